"""authctl consent: what users let third-party clients have.

Revoking a consent makes the client ask again at the next sign-in; tokens it
already holds live on until they expire or are revoked.
"""

from typing import Annotated, Any

import typer

from cli.common import open_unit_of_work, run
from cli.output import (
    JsonOpt,
    add_row,
    plural,
    print_json,
    print_table,
    say,
    table,
    when,
)

app = typer.Typer(
    help="List and revoke users' consents to third-party clients.\n\n"
    "Example: authctl consent revoke alice --client partner-app",
    no_args_is_help=True,
)


@app.command("list")
def list_consents(
    user: Annotated[
        str | None,
        typer.Option(
            "--user", metavar="USER", help="Only this user (username or UUID)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List remembered consents, oldest first.

    Example: authctl consent list --user alice
    """
    rows = run(_list(user))
    if as_json:
        print_json(rows)
        return
    grid = table("User", "Client ID", "Scopes", "Granted")
    for row in rows:
        add_row(
            grid, row["username"], row["client_id"], row["scope"], row["granted_at"]
        )
    print_table(grid)
    say(plural(len(rows), "consent"))


async def _list(user_ref: str | None) -> list[dict[str, Any]]:
    from authserver.crud.consent import ConsentRepository
    from authserver.crud.user import UserRepository
    from authserver.services.users import resolve_user

    async with open_unit_of_work() as uow:
        session = uow.session
        user_id = None
        if user_ref is not None:
            user_id = (await resolve_user(UserRepository(session), user_ref)).id
        consents = await ConsentRepository(session).list(user_id=user_id)
        return [
            {
                "user_id": str(consent.user_id),
                "username": username,
                "client_id": client_id,
                "scope": consent.scope,
                "granted_at": when(consent.granted_at),
            }
            for consent, username, client_id in consents
        ]


@app.command("revoke")
def revoke(
    user: Annotated[str, typer.Argument(metavar="USER", help="Username or UUID.")],
    client: Annotated[
        str | None,
        typer.Option(
            "--client",
            metavar="CLIENT_ID",
            help="Only this client_id (default: every client).",
        ),
    ] = None,
) -> None:
    """Forget a user's consent to one client, or to every client.

    Example: authctl consent revoke alice --client partner-app
    """
    revoked = run(_revoke(user, client))
    say(f"revoked {plural(revoked, 'consent')}")


async def _revoke(user_ref: str, client_id: str | None) -> int:
    from authserver.crud.client import ClientRepository
    from authserver.crud.user import UserRepository
    from authserver.services import consent
    from authserver.services.clients import resolve_client
    from authserver.services.users import resolve_user

    async with open_unit_of_work() as uow:
        session = uow.session
        owner = await resolve_user(UserRepository(session), user_ref)
        target = None
        if client_id is not None:
            target = await resolve_client(client_id, ClientRepository(session))
        return await consent.revoke(uow, owner.id, target)
