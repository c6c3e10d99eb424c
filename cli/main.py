"""authctl: the admin CLI for the token server, one sub-app per resource."""

import getpass
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from authserver.core.context import bind_request, new_request_id
from authserver.core.logging import configure_logging
from cli import audit, client, db, key, serve, user

HELP = """Manage the authserver token server: users, clients, signing keys, schema.

Reads the same AUTH_* settings (and .env) as the server.

Example: authctl user create alice --admin

Example: authctl client create 'Billing service' --json
"""

app = typer.Typer(
    name="authctl",
    help=HELP,
    no_args_is_help=True,
    # Expected failures are one line on stderr; anything else is a bug, and a
    # plain traceback is the most useful report (Rich's would show locals).
    pretty_exceptions_enable=False,
)
app.add_typer(user.app, name="user")
app.add_typer(client.app, name="client")
app.add_typer(key.app, name="key")
app.add_typer(db.app, name="db")
app.add_typer(audit.app, name="audit")
app.command("serve")(serve.serve)


def _print_version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"authctl {version('authserver')}")
        except PackageNotFoundError:
            typer.echo("authctl (not installed)")
        raise typer.Exit()


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Show version."
        ),
    ] = False,
) -> None:
    # Settings are read lazily by each command, not here: `--help` of every
    # subcommand must work even when the environment is misconfigured.
    # One correlation id per invocation; audit records name the OS user.
    bind_request(new_request_id(), actor=f"cli:{_os_user()}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid())


def main(args: list[str] | None = None) -> None:
    """The console script: warnings and errors logged to stderr (stdout is for
    --json); audit events are in the database, `authctl audit list` shows them."""
    configure_logging("WARNING", "console", stream=sys.stderr)
    app(args=args)
