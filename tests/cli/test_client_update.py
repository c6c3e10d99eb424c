"""authctl client update: each option, the rules of `client create`, and the
database and audit trail afterwards (nothing changed after a refusal)."""

import json
from typing import Any

import pytest
from sqlalchemy import select

from authserver.core.security import verify_client_secret
from authserver.crud.audit import AuditRepository
from authserver.models import AuditEvent, Client
from authserver.services.clients import registration
from tests import factories
from tests.cli.conftest import Cli
from tests.cli.helpers import failed, ok, one_error_line
from tests.cli.test_client import get_client
from tests.factories import make_client

CALLBACK = "https://app.example.com/callback"
SECOND = "https://app.example.com/second"
NEW = "https://app.example.com/new"
LOGGED_OUT = "https://app.example.com/bye"
LOOPBACK = "http://127.0.0.1:9000/"
SEED: dict[str, Any] = {
    "client_id": "web-app",
    "name": "Web app",
    "grant_types": ("authorization_code", "password", "refresh_token"),
    "scopes": ("openid", "profile", "email"),
    "redirect_uris": (CALLBACK, SECOND),
    "post_logout_redirect_uris": (LOGGED_OUT,),
}


def seed(cli: Cli, **overrides: Any) -> factories.TestClient:
    return cli.seed(lambda f: make_client(f, **{**SEED, **overrides}))


def stored(cli: Cli, client_id: str = "web-app") -> Client:
    client = get_client(cli, client_id)
    assert client is not None
    return client


def update_events(cli: Cli) -> list[AuditEvent]:
    return list(cli.db(lambda s: AuditRepository(s).list(event="client_updated")))


# Each option alone: (seed overrides, arguments, the fields it must change).
UPDATES: dict[str, tuple[dict[str, Any], list[str], dict[str, Any]]] = {
    "name": ({}, ["--name", "  Web app 2 "], {"name": "Web app 2"}),
    "redirect-uri-replaces": (
        {},
        ["--redirect-uri", NEW, "--redirect-uri", CALLBACK],
        {"redirect_uris": [NEW, CALLBACK]},
    ),
    "add-redirect-uri": (
        {},
        ["--add-redirect-uri", NEW, "--add-redirect-uri", LOOPBACK],
        {"redirect_uris": [CALLBACK, SECOND, NEW, LOOPBACK]},
    ),
    "remove-redirect-uri": (
        {},
        ["--remove-redirect-uri", CALLBACK],
        {"redirect_uris": [SECOND]},
    ),
    "add-and-remove-redirect-uri": (
        {},
        ["--remove-redirect-uri", SECOND, "--add-redirect-uri", NEW],
        {"redirect_uris": [CALLBACK, NEW]},
    ),
    "post-logout-redirect-uri-replaces": (
        {},
        ["--post-logout-redirect-uri", NEW],
        {"post_logout_redirect_uris": [NEW]},
    ),
    "add-post-logout-redirect-uri": (
        {},
        ["--add-post-logout-redirect-uri", LOOPBACK],
        {"post_logout_redirect_uris": [LOGGED_OUT, LOOPBACK]},
    ),
    "remove-post-logout-redirect-uri": (
        {},
        ["--remove-post-logout-redirect-uri", LOGGED_OUT],
        {"post_logout_redirect_uris": []},
    ),
    "scope": (
        {},
        ["--scope", "openid", "--scope", "profile api:read"],
        {"scopes": ["openid", "profile", "api:read"]},
    ),
    "grant": (
        {},
        ["--grant", "refresh_token", "--grant", "authorization_code"],
        {"grant_types": ["authorization_code", "refresh_token"]},
    ),
    "grant-comma-separated": (
        {"grant_types": ("authorization_code",)},
        ["--grant", "authorization_code,password"],
        {"grant_types": ["authorization_code", "password"]},
    ),
    "third-party": ({}, ["--third-party"], {"is_third_party": True}),
    "first-party": (
        {"is_third_party": True},
        ["--first-party"],
        {"is_third_party": False},
    ),
}
JSON_NAMES = {"is_third_party": "third_party"}


@pytest.mark.parametrize(
    ("overrides", "args", "expected"), list(UPDATES.values()), ids=list(UPDATES)
)
def test_each_option_changes_its_field_only(
    cli: Cli, overrides: dict[str, Any], args: list[str], expected: dict[str, Any]
) -> None:
    seeded = seed(cli, **overrides)
    before = registration(stored(cli))

    result = ok(cli("client", "update", "web-app", *args, "--json"))

    body = json.loads(result.stdout)
    assert body["changed"] == [JSON_NAMES.get(name, name) for name in expected]
    after = stored(cli)
    assert registration(after) == {**before, **expected}
    assert body["client_id"] == "web-app" and body["id"] == str(seeded.client.id)
    # The secret is rotate-secret's business: the old one still works.
    assert after.secret_hash == seeded.client.secret_hash
    assert verify_client_secret(seeded.secret or "", after.secret_hash or "")
    assert result.stderr == ""  # --json: JSON only


def test_several_options_make_one_change_and_one_audit_record(cli: Cli) -> None:
    seed(cli)
    result = ok(
        cli(
            "client",
            "update",
            "web-app",
            "--name",
            "Renamed",
            "--add-redirect-uri",
            NEW,
            "--scope",
            "openid profile",
            "--third-party",
        )
    )

    assert result.stdout.splitlines()[0] == (
        "updated client web-app: name, scopes, redirect_uris, third_party"
    )
    assert "redirect URIs  " + " ".join([CALLBACK, SECOND, NEW]) in result.stdout
    assert "third party    yes (asks consent)" in result.stdout
    # Servers reuse a client they read for AUTH_CLIENT_CACHE_TTL (5 s by default).
    assert "within 5 s" in result.stderr
    [event] = update_events(cli)
    assert event.client_id == "web-app"
    assert event.actor is not None and event.actor.startswith("cli:")
    assert event.request_id
    assert event.detail == {
        "changes": {
            "name": {"before": "Web app", "after": "Renamed"},
            "scopes": {
                "before": ["openid", "profile", "email"],
                "after": ["openid", "profile"],
            },
            "redirect_uris": {
                "before": [CALLBACK, SECOND],
                "after": [CALLBACK, SECOND, NEW],
            },
            "is_third_party": {"before": False, "after": True},
        }
    }
    listed = json.loads(
        ok(cli("audit", "list", "--event", "client_updated", "--json")).stdout
    )
    assert [e["client_id"] for e in listed] == ["web-app"]


def test_an_update_to_what_is_there_writes_nothing(cli: Cli) -> None:
    seed(cli)
    before = stored(cli)

    human = ok(cli("client", "update", "web-app", "--add-redirect-uri", CALLBACK))
    body = json.loads(
        ok(cli("client", "update", "web-app", "--name", "Web app", "--json")).stdout
    )

    assert "nothing changed" in human.stdout
    assert body["changed"] == []
    assert stored(cli).updated_at == before.updated_at
    assert update_events(cli) == []


TOO_MANY = [f"https://app.example.com/cb{i}" for i in range(19)]

# (seed overrides, arguments, words of the one error line).
REFUSED: dict[str, tuple[dict[str, Any], list[str], str]] = {
    "plain-http-redirect": (
        {},
        ["--add-redirect-uri", "http://app.example.com/cb"],
        "invalid --redirect-uri: redirect URI 'http://app.example.com/cb' must use https",
    ),
    "wildcard-redirect": (
        {},
        ["--redirect-uri", "https://*.example.com/cb"],
        "must not contain wildcards",
    ),
    "fragment-post-logout": (
        {},
        ["--add-post-logout-redirect-uri", "https://app.example.com/#x"],
        "invalid --post-logout-redirect-uri: redirect URI",
    ),
    "remove-unregistered-redirect": (
        {},
        ["--remove-redirect-uri", NEW],
        f"cannot remove redirect URI {NEW!r}: the client does not have it",
    ),
    "remove-unregistered-post-logout": (
        {},
        ["--remove-post-logout-redirect-uri", CALLBACK],
        "cannot remove post-logout redirect URI",
    ),
    "code-flow-without-redirect": (
        {},
        ["--remove-redirect-uri", CALLBACK, "--remove-redirect-uri", SECOND],
        "authorization_code needs at least one redirect URI",
    ),
    "code-grant-without-redirect": (
        {"grant_types": ("password",), "redirect_uris": ()},
        ["--grant", "authorization_code"],
        "authorization_code needs at least one redirect URI",
    ),
    "too-many-redirects": (
        {},
        [arg for uri in TOO_MANY for arg in ("--add-redirect-uri", uri)],
        "invalid --redirect-uri",
    ),
    "refresh-alone": (
        {},
        ["--grant", "refresh_token"],
        "refresh_token is of no use without authorization_code or password",
    ),
    "unknown-grant": ({}, ["--grant", "implicit"], "unknown grant type 'implicit'"),
    "no-grant": ({}, ["--grant", ""], "invalid --grant"),
    "public-client-credentials": (
        {"public": True},
        ["--grant", "client_credentials"],
        "a public client cannot use client_credentials",
    ),
    "bad-scope": ({}, ["--scope", 'quote"d'], "invalid scope token"),
    "scopes-too-long": (
        {},
        ["--scope", " ".join(f"s{i:03d}" + "x" * 96 for i in range(11))],
        "the scopes together exceed 1024 characters",
    ),
    "control-character-name": (
        {},
        ["--name", "Evil\x1b]0;owned\x07"],
        "invalid --name: the name has control characters",
    ),
    "blank-name": ({}, ["--name", "   "], "invalid --name: the name is blank"),
}


@pytest.mark.parametrize(
    ("overrides", "args", "message"), list(REFUSED.values()), ids=list(REFUSED)
)
def test_a_refused_update_changes_nothing(
    cli: Cli, overrides: dict[str, Any], args: list[str], message: str
) -> None:
    seed(cli, **overrides)
    before = stored(cli)

    line = one_error_line(
        cli("client", "update", "web-app", "--name", "Changed?", *args, "--json")
    )

    assert message in line
    after = stored(cli)
    assert registration(after) == registration(before)
    assert after.updated_at == before.updated_at
    assert update_events(cli) == []


def test_errors_quote_input_inertly(cli: Cli) -> None:
    seed(cli)
    uri = "https://app.example.com/\x1b[2J\u202e"
    results = [
        cli("client", "update", "web-app", "--remove-redirect-uri", uri),
        cli("client", "update", "web-app", "--add-redirect-uri", uri),
    ]
    lines = [one_error_line(result) for result in results]
    assert all("\x1b" not in line and "\u202e" not in line for line in lines)
    assert "\\x1b[2J" in lines[0] and "\\u202e" in lines[0]
    assert "printable ASCII" in lines[1]


def test_a_registration_refused_today_is_fixed_by_the_same_update(cli: Cli) -> None:
    seed(cli, public=True, grant_types=("password",))

    async def legacy(session: Any) -> None:
        # Stored before the CLI refused it: a public client_credentials client.
        client = await session.scalar(
            select(Client).where(Client.client_id == "web-app")
        )
        client.grant_types = ["client_credentials"]
        await session.commit()

    cli.db(legacy)

    refused = one_error_line(cli("client", "update", "web-app", "--name", "Renamed"))
    ok(cli("client", "update", "web-app", "--name", "Renamed", "--grant", "password"))

    assert "a public client cannot use client_credentials" in refused
    client = stored(cli)
    assert (client.name, client.grant_types) == ("Renamed", ["password"])


USAGE_ERRORS = {
    "no-change": ([], "nothing to change"),
    "replace-and-add": (
        ["--redirect-uri", NEW, "--add-redirect-uri", SECOND],
        "--redirect-uri replaces the list",
    ),
    "replace-and-remove-post-logout": (
        ["--post-logout-redirect-uri", NEW, "--remove-post-logout-redirect-uri", NEW],
        "--post-logout-redirect-uri replaces the list",
    ),
    "add-and-remove-the-same": (
        ["--add-redirect-uri", NEW, "--remove-redirect-uri", NEW],
        "is both in --add-redirect-uri and --remove-redirect-uri",
    ),
    "json-alone": (["--json"], "nothing to change"),
}


@pytest.mark.parametrize(
    ("args", "message"), list(USAGE_ERRORS.values()), ids=list(USAGE_ERRORS)
)
def test_usage_errors_exit_2_and_change_nothing(
    cli: Cli, args: list[str], message: str
) -> None:
    seed(cli)
    before = registration(stored(cli))

    stderr = failed(cli("client", "update", "web-app", *args), code=2)

    assert message in " ".join(stderr.replace("│", " ").split())
    assert registration(stored(cli)) == before
    assert update_events(cli) == []


def test_update_needs_a_client_id(cli: Cli) -> None:
    assert "Missing argument" in failed(cli("client", "update"), code=2)


def test_help(cli: Cli) -> None:
    result = ok(cli("client", "update", "-h"))
    for option in ("--add-redirect-uri", "--remove-post-logout", "--first-party"):
        assert option in result.stdout
