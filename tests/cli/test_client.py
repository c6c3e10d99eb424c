"""authctl client: each command, its failures, and the database afterwards."""

import json

import pytest

from authserver.core.security import verify_client_secret
from authserver.crud.client import ClientRepository
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.models import Client
from tests.cli.conftest import Cli
from tests.cli.helpers import add_refresh_token, failed, ok, one_error_line
from tests.factories import make_client, make_user


def get_client(cli: Cli, client_id: str) -> Client | None:
    return cli.db(lambda s: ClientRepository(s).get_by_client_id(client_id))


def seed_client(cli: Cli, client_id: str, **options: object) -> Client:
    return cli.seed(lambda f: make_client(f, client_id=client_id, **options)).client


def count_clients(cli: Cli) -> int:
    return len(cli.db(lambda s: ClientRepository(s).list()))


# --- create -------------------------------------------------------------------


def test_create_confidential_prints_secret_once_as_json(cli: Cli) -> None:
    result = ok(
        cli(
            "client",
            "create",
            "Billing Service",
            "--grant",
            "password",
            "--grant",
            "refresh_token",
            "--scope",
            "openid",
            "--scope",
            "profile api:read",
            "--audience",
            "https://api.example.com",
            "--json",
        )
    )
    body = json.loads(result.stdout)
    assert body["client_id"] == "billing-service"  # derived from NAME
    assert body["public"] is False
    client = get_client(cli, "billing-service")
    assert client is not None and client.secret_hash is not None
    assert body["client_secret"] not in client.secret_hash  # only a hash is kept
    assert verify_client_secret(body["client_secret"], client.secret_hash)
    assert client.name == "Billing Service"
    assert client.grant_types == ["password", "refresh_token"]
    assert client.scopes == ["openid", "profile", "api:read"]
    assert client.audience == "https://api.example.com"
    assert result.stderr == ""  # --json: no advice mixed in anywhere


def test_create_human_output_and_defaults(cli: Cli) -> None:
    result = ok(cli("client", "create", "Web App", "--client-id", "web.app"))
    client = get_client(cli, "web.app")
    assert client is not None
    secret = next(
        line.split()[-1]
        for line in result.stdout.splitlines()
        if line.startswith("client_secret:")
    )
    assert verify_client_secret(secret, client.secret_hash or "")
    assert "not shown again" in result.stderr
    assert client.grant_types == ["password", "refresh_token"]
    assert client.scopes == ["openid", "profile", "email"]
    assert client.audience is None


def test_create_public_has_no_secret(cli: Cli) -> None:
    result = ok(cli("client", "create", "Ünïcode SPA", "--public", "--json"))
    body = json.loads(result.stdout)
    assert body["client_id"] == "unicode-spa"
    assert body["public"] is True and body["client_secret"] is None
    client = get_client(cli, "unicode-spa")
    assert client is not None and client.secret_hash is None


BAD_CREATES = {
    "duplicate": (["Taken App"], "client 'taken-app' exists"),
    "unknown-grant": (["X App", "--grant", "implicit"], "invalid --grant"),
    "bad-client-id": (["X App", "--client-id", "a b"], "invalid --client-id"),
    "uuid-client-id": (
        ["X App", "--client-id", "0b5c2f0e-3d9a-4c8e-9f1a-2b7d6e5c4a39"],
        "may not look like a UUID",
    ),
    "hex-uuid-client-id": (
        ["X App", "--client-id", "0b5c2f0e3d9a4c8e9f1a2b7d6e5c4a39"],
        "may not look like a UUID",
    ),
    "bad-scope": (["X App", "--scope", 'quote"d'], "invalid scope token"),
    "underivable-name": (["!!"], "--client-id"),
    "public-client-credentials": (
        ["X App", "--public", "--grant", "client_credentials"],
        "public client cannot use client_credentials",
    ),
}


@pytest.mark.parametrize(
    ("args", "message"), list(BAD_CREATES.values()), ids=list(BAD_CREATES)
)
def test_create_rejects(cli: Cli, args: list[str], message: str) -> None:
    seed_client(cli, "taken-app")
    line = one_error_line(cli("client", "create", *args, "--json"))
    assert message in line
    assert count_clients(cli) == 1


def test_create_needs_a_name(cli: Cli) -> None:
    assert "Missing argument" in failed(cli("client", "create"), code=2)


# --- list, show -------------------------------------------------------------------


def test_list_and_show(cli: Cli) -> None:
    seed_client(cli, "b-app", public=True)
    seed_client(cli, "a-app", audience="https://api.example.com")

    clients = json.loads(ok(cli("client", "list", "--json")).stdout)
    assert [c["client_id"] for c in clients] == ["a-app", "b-app"]
    assert [c["public"] for c in clients] == [False, True]
    assert all("secret" not in key for c in clients for key in c)

    human = ok(cli("client", "list")).stdout
    assert "a-app" in human and "confidential" in human and "2 clients" in human

    shown = json.loads(ok(cli("client", "show", "a-app", "--json")).stdout)
    assert shown == clients[0]
    assert "https://api.example.com" in ok(cli("client", "show", "a-app")).stdout


# --- rotate-secret, delete ------------------------------------------------------


def test_rotate_secret_replaces_the_old_one(cli: Cli) -> None:
    old = cli.seed(lambda f: make_client(f, client_id="svc-app"))
    body = json.loads(ok(cli("client", "rotate-secret", "svc-app", "--json")).stdout)
    client = get_client(cli, "svc-app")
    assert client is not None and client.secret_hash is not None
    assert verify_client_secret(body["client_secret"], client.secret_hash)
    assert not verify_client_secret(old.secret or "", client.secret_hash)

    human = ok(cli("client", "rotate-secret", "svc-app"))
    assert "client_secret:" in human.stdout and "not shown again" in human.stderr
    # Servers reuse a client they read for AUTH_CLIENT_CACHE_TTL (default 5 s).
    assert "the old one stops working within 5 s" in human.stdout


def test_rotate_secret_of_public_client_fails(cli: Cli) -> None:
    seed_client(cli, "spa-app", public=True)
    assert "is public" in one_error_line(cli("client", "rotate-secret", "spa-app"))
    assert get_client(cli, "spa-app").secret_hash is None


def test_delete_removes_client_and_its_refresh_tokens(cli: Cli) -> None:
    client = seed_client(cli, "old-app")
    user = cli.seed(make_user)
    jti = cli.seed(lambda f: add_refresh_token(f, user.id, client.id))

    declined = failed(cli("client", "delete", "old-app", input="n\n"))
    assert "Delete client 'old-app'" in declined
    assert declined.splitlines()[-1] == "error: not confirmed, nothing changed"
    assert get_client(cli, "old-app") is not None

    assert (
        "deleted client old-app" in ok(cli("client", "delete", "old-app", "-y")).stdout
    )
    assert get_client(cli, "old-app") is None
    assert cli.db(lambda s: RefreshTokenRepository(s).get(jti)) is None


@pytest.mark.parametrize(
    "args",
    [
        ["show"],
        ["rotate-secret"],
        ["delete", "--yes"],
        ["delete"],
        ["update", "--json", "--name", "x"],
    ],
    ids=["show", "rotate-secret", "delete", "delete-without-yes", "update"],
)
def test_unknown_client(cli: Cli, args: list[str]) -> None:
    # One line: `delete` does not ask about a client that does not exist.
    result = cli("client", *args, "nope", input="y\n")
    assert one_error_line(result) == "error: no client 'nope'"
