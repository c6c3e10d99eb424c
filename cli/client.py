"""authctl client: register OAuth clients (RFC 6749 §2) and manage their secrets.

A confidential client's secret is printed once, when it is made; only its hash
is stored, so a lost secret is replaced with `rotate-secret`, never recovered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from authserver.schemas.grant_types import GRANT_TYPES
from cli.common import build, open_unit_of_work, run, settings
from cli.output import (
    JsonOpt,
    add_row,
    confirm,
    fail,
    note,
    plural,
    print_details,
    print_json,
    print_table,
    say,
    table,
    when,
)

if TYPE_CHECKING:
    from authserver.models import Client
    from authserver.schemas.client import ClientChanges, ClientCreate, UriChanges

app = typer.Typer(
    help="Manage OAuth clients.\n\n"
    "Example: authctl client create 'Mobile app' --public --grant password",
    no_args_is_help=True,
)

ClientArg = Annotated[str, typer.Argument(metavar="CLIENT_ID", help="The client_id.")]

DEFAULT_GRANTS = ["password", "refresh_token"]
DEFAULT_SCOPES = ["openid", "profile", "email"]
# Schema field -> what the admin typed, for one-line validation errors.
FIELDS = {
    "client_id": "--client-id",
    "name": "NAME",
    "grant_types": "--grant",
    "scopes": "--scope",
    "audience": "--audience",
    "redirect_uris": "--redirect-uri",
    "post_logout_redirect_uris": "--post-logout-redirect-uri",
}
# `update` names the display name by option.
UPDATE_FIELDS = {**FIELDS, "name": "--name"}
HINTS = {"client_id": "use 3 to 100 letters, digits and . _ ~ -"}
# Registration fields as client_json names them.
JSON_NAMES = {"is_third_party": "third_party"}
SECRET_WARNING = "Store the secret now: it is not shown again (only its hash is kept)."
Uris = list[str] | None


def _uri_option(help: str) -> Any:
    """A repeatable URI option of `update` (short help: the names are long)."""
    return typer.Option(metavar="URI", help=help)


@app.command("create")
def create(
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="Display name, e.g. 'Billing service'."),
    ],
    client_id: Annotated[
        str | None,
        typer.Option(
            metavar="CLIENT_ID",
            help="Public identifier; derived from NAME when omitted.",
        ),
    ] = None,
    public: Annotated[
        bool,
        typer.Option(
            "--public", help="No secret (apps that cannot keep one: mobile, SPA)."
        ),
    ] = False,
    grant: Annotated[
        list[str] | None,
        typer.Option(
            metavar="GRANT",
            help=f"Allowed grant type, repeatable: {', '.join(GRANT_TYPES)}. "
            f"Default: {' '.join(DEFAULT_GRANTS)}.",
        ),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            metavar="SCOPE",
            help="Allowed scope, repeatable (or space-separated). "
            f"Default: {' '.join(DEFAULT_SCOPES)}.",
        ),
    ] = None,
    audience: Annotated[
        str | None,
        typer.Option(
            metavar="AUDIENCE", help="`aud` of its access tokens (default: the issuer)."
        ),
    ] = None,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(
            metavar="URI",
            help="Where the code flow may send the browser back (exact match), "
            "repeatable; needed for --grant authorization_code.",
        ),
    ] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None,
        typer.Option(
            metavar="URI", help="Where logout may send the browser (exact), repeatable."
        ),
    ] = None,
    third_party: Annotated[
        bool,
        typer.Option(
            "--third-party",
            help="Someone else's app: users are asked to consent to its scopes.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a client and print its client_id and, once, its secret.

    Example: authctl client create 'Billing service' --scope 'openid profile'

    Example: authctl client create SPA --public --client-id spa --json

    Example: authctl client create 'Web app' --grant authorization_code
    --grant refresh_token --redirect-uri https://app.example.com/callback
    """
    from authserver.schemas.client import ClientCreate

    if client_id is None:
        client_id = _derive(name)
    data = build(
        ClientCreate,
        FIELDS,
        HINTS,
        client_id=client_id,
        name=name,
        grant_types=_split(grant, commas=True) or DEFAULT_GRANTS,
        scopes=_split(scope) if scope else DEFAULT_SCOPES,
        audience=audience,
        redirect_uris=redirect_uri or [],
        post_logout_redirect_uris=post_logout_redirect_uri or [],
        is_third_party=third_party,
    )
    client, secret = run(_create(data, public))
    if as_json:
        print_json({**client, "client_secret": secret})
        return
    kind = "public" if public else "confidential"
    say(f"created {kind} client {client['name']!r}")
    say(f"client_id:     {client['client_id']}")
    if secret is not None:
        say(f"client_secret: {secret}")
        note(SECRET_WARNING)


async def _create(
    data: ClientCreate, public: bool
) -> tuple[dict[str, Any], str | None]:
    from authserver.services.clients import create_client

    async with open_unit_of_work() as uow:
        client, secret = await create_client(data, uow, public=public)
        return client_json(client), secret


@app.command("update")
def update(
    ctx: typer.Context,
    client_id: ClientArg,
    name: Annotated[
        str | None, typer.Option(metavar="NAME", help="New display name.")
    ] = None,
    redirect_uri: Annotated[
        Uris, _uri_option("Replace the redirect URIs with these.")
    ] = None,
    add_redirect_uri: Annotated[
        Uris, _uri_option("Register one more redirect URI.")
    ] = None,
    remove_redirect_uri: Annotated[
        Uris, _uri_option("Unregister a redirect URI.")
    ] = None,
    post_logout_redirect_uri: Annotated[
        Uris, _uri_option("Replace the post-logout URIs.")
    ] = None,
    add_post_logout_redirect_uri: Annotated[
        Uris, _uri_option("Register one more.")
    ] = None,
    remove_post_logout_redirect_uri: Annotated[
        Uris, _uri_option("Unregister one.")
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            metavar="SCOPE", help="Replace the scopes (as in create), repeatable."
        ),
    ] = None,
    grant: Annotated[
        list[str] | None,
        typer.Option(
            metavar="GRANT", help="Replace the grant types (as in create), repeatable."
        ),
    ] = None,
    third_party: Annotated[
        bool | None,
        typer.Option(
            "--third-party/--first-party",
            help="Whether users are asked to consent to its scopes.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a client's registration; its client_id and secret stay.

    The result must pass every rule of `client create`; if it does not,
    nothing changes. Running servers use it within AUTH_CLIENT_CACHE_TTL.

    Example: authctl client update web-app --add-redirect-uri
    https://app.example.com/new-callback

    Example: authctl client update reports --scope 'reports:read' --json
    """
    from authserver.schemas.client import ClientChanges

    changes = ClientChanges(
        name=name,
        grant_types=None if grant is None else _split(grant, commas=True),
        scopes=None if scope is None else _split(scope),
        redirect_uris=_uri_changes(
            ctx, "--redirect-uri", redirect_uri, add_redirect_uri, remove_redirect_uri
        ),
        post_logout_redirect_uris=_uri_changes(
            ctx,
            "--post-logout-redirect-uri",
            post_logout_redirect_uri,
            add_post_logout_redirect_uri,
            remove_post_logout_redirect_uri,
        ),
        is_third_party=third_party,
    )
    if not changes:
        ctx.fail("nothing to change: give at least one option (see -h)")
    client, fields = run(_update(client_id, changes), UPDATE_FIELDS, HINTS)
    changed = [JSON_NAMES.get(field, field) for field in fields]
    if as_json:
        print_json({**client, "changed": changed})
        return
    if not changed:
        say(f"client {client_id} already has that registration; nothing changed")
        return
    ttl = settings().client_cache_ttl
    say(f"updated client {client_id}: {', '.join(changed)}")
    if ttl > 0:
        note(f"Running servers use the new registration within {ttl:g} s.")
    _print_client(client)


def _uri_changes(
    ctx: typer.Context,
    option: str,
    replace: list[str] | None,
    add: list[str] | None,
    remove: list[str] | None,
) -> UriChanges:
    from authserver.schemas.client import UriChanges

    added, removed = add or [], remove or []
    adding = option.replace("--", "--add-", 1)
    removing = option.replace("--", "--remove-", 1)
    if replace is not None and (added or removed):
        ctx.fail(f"{option} replaces the list: not with {adding} or {removing}")
    both = [uri for uri in added if uri in removed]
    if both:
        ctx.fail(f"{both[0]!r} is both in {adding} and {removing}")
    return UriChanges(replace=replace, add=added, remove=removed)


async def _update(
    client_id: str, changes: ClientChanges
) -> tuple[dict[str, Any], list[str]]:
    from authserver.services.clients import update_client

    async with open_unit_of_work() as uow:
        client, changed = await update_client(client_id, changes, uow)
        return client_json(client), changed


@app.command("list")
def list_clients(as_json: JsonOpt = False) -> None:
    """List every client, ordered by client_id.

    Example: authctl client list --json
    """
    clients = run(_list())
    if as_json:
        print_json(clients)
        return
    grid = table("Client ID", "Name", "Type", "Grants", "Scopes", "Audience")
    for client in clients:
        add_row(
            grid,
            client["client_id"],
            client["name"],
            "public" if client["public"] else "confidential",
            " ".join(client["grant_types"]),
            " ".join(client["scopes"]),
            client["audience"],
        )
    print_table(grid)
    say(plural(len(clients), "client"))


async def _list() -> list[dict[str, Any]]:
    from authserver.crud.client import ClientRepository

    async with open_unit_of_work() as uow:
        return [client_json(c) for c in await ClientRepository(uow.session).list()]


@app.command("show")
def show(client_id: ClientArg, as_json: JsonOpt = False) -> None:
    """Show one client's registration (never its secret).

    Example: authctl client show billing-service
    """
    client = run(_show(client_id))
    if as_json:
        print_json(client)
        return
    _print_client(client)


def _print_client(client: dict[str, Any]) -> None:
    print_details(
        {
            "client_id": client["client_id"],
            "name": client["name"],
            "type": "public" if client["public"] else "confidential",
            "grant types": " ".join(client["grant_types"]),
            "scopes": " ".join(client["scopes"]),
            "audience": client["audience"] or "(the issuer)",
            "redirect URIs": " ".join(client["redirect_uris"]) or "(none)",
            "logout URIs": " ".join(client["post_logout_redirect_uris"]) or "(none)",
            "third party": "yes (asks consent)" if client["third_party"] else "no",
            "created": client["created_at"],
            "updated": client["updated_at"],
            "id": client["id"],
        }
    )


async def _show(client_id: str) -> dict[str, Any]:
    from authserver.crud.client import ClientRepository
    from authserver.services.clients import resolve_client

    async with open_unit_of_work() as uow:
        return client_json(
            await resolve_client(client_id, ClientRepository(uow.session))
        )


@app.command("rotate-secret")
def rotate_secret(client_id: ClientArg, as_json: JsonOpt = False) -> None:
    """Give a confidential client a new secret; the old one stops working at once.

    Example: authctl client rotate-secret billing-service
    """
    secret = run(_rotate(client_id))
    if as_json:
        print_json({"client_id": client_id, "client_secret": secret})
        return
    # Each server process reuses a client it read for AUTH_CLIENT_CACHE_TTL.
    ttl = settings().client_cache_ttl
    say(
        f"new secret for {client_id}; the old one stops working within {ttl:g} s"
        if ttl > 0
        else f"new secret for {client_id}; the old one no longer works"
    )
    say(f"client_secret: {secret}")
    note(SECRET_WARNING)


async def _rotate(client_id: str) -> str:
    from authserver.services.clients import rotate_client_secret

    async with open_unit_of_work() as uow:
        return await rotate_client_secret(client_id, uow)


@app.command("delete")
def delete(
    client_id: ClientArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a client and every refresh token issued to it (asks first).

    Example: authctl client delete billing-service --yes
    """
    if not yes:
        client = run(_show(client_id))  # an unknown client fails before the question
        question = f"Delete client {client['client_id']!r} ({client['name']})"
        confirm(f"{question} and its refresh tokens?", yes=False)
    run(_delete(client_id))
    say(f"deleted client {client_id}")


async def _delete(client_id: str) -> None:
    from authserver.services.clients import delete_client

    async with open_unit_of_work() as uow:
        await delete_client(client_id, uow)


def client_json(client: Client) -> dict[str, Any]:
    return {
        "id": str(client.id),
        "client_id": client.client_id,
        "name": client.name,
        "public": client.is_public,
        "grant_types": list(client.grant_types),
        "scopes": list(client.scopes),
        "audience": client.audience,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "third_party": client.is_third_party,
        "created_at": when(client.created_at),
        "updated_at": when(client.updated_at),
    }


def _derive(name: str) -> str:
    from authserver.core.exceptions import InvalidValueError
    from authserver.services.clients import client_id_from_name

    try:
        return client_id_from_name(name)
    except InvalidValueError as exc:
        fail(f"{exc} with --client-id")


def _split(values: list[str] | None, *, commas: bool = False) -> list[str]:
    """Accept `--scope a --scope b` as well as `--scope "a b"`."""
    items: list[str] = []
    for value in values or []:
        items.extend((value.replace(",", " ") if commas else value).split())
    return items
