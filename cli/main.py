"""authctl: the admin CLI for the token server, one sub-app per resource.

Every module of `cli` imports only typer, rich and light modules of ours at
load time; each command imports the stack it needs when it runs. So `--help`
and `--version` answer without loading SQLAlchemy, FastAPI or the services
(tests/cli/test_help.py holds that).
"""

import getpass
import os
import sys
from typing import Annotated

import typer

from cli import audit, client, consent, db, help_format, key, serve, session, user

HELP = """Manage the authserver token server: users, clients, signing keys, schema.

Reads the same AUTH_* settings (and .env) as the server.

Example: authctl user create alice --admin

Example: authctl client create 'Billing service' --json
"""

app = typer.Typer(
    name="authctl",
    help=HELP,
    no_args_is_help=True,
    # Inherited by every group and command.
    context_settings={"help_option_names": ["-h", "--help"]},
    # Expected failures are one line on stderr; anything else is a bug, and a
    # plain traceback is the most useful report (Rich's would show locals).
    pretty_exceptions_enable=False,
)
# In the order of a first session: run it, add users and clients, then the rest.
app.command("serve")(serve.serve)
app.add_typer(user.app, name="user")
app.add_typer(client.app, name="client")
app.add_typer(key.app, name="key")
app.add_typer(audit.app, name="audit")
app.add_typer(db.app, name="db")
app.add_typer(session.app, name="session")
app.add_typer(consent.app, name="consent")
help_format.show_names_not_types()
help_format.keep_option_names_whole()


def _print_version(value: bool) -> None:
    from importlib.metadata import PackageNotFoundError, version

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
    from authserver.core.context import bind_request, new_request_id

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
    from authserver.core.logging import configure_logging

    configure_logging("WARNING", "console", stream=sys.stderr)
    app(args=args)
