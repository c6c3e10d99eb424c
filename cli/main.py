"""authctl: the admin CLI for the token server."""

import typer

from cli import db, serve

app = typer.Typer(
    name="authctl",
    help="Manage the authserver token server: users, clients, keys, schema, serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.command("serve")(serve.serve)


def main(args: list[str] | None = None) -> None:
    app(args=args)
