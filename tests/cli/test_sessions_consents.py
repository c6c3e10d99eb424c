"""authctl client create for the code flow; authctl session and consent."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from authserver.crud.consent import ConsentRepository
from authserver.crud.login_session import LoginSessionRepository
from authserver.crud.token_family import TokenFamilyRepository
from authserver.models import TokenFamily
from authserver.services import consent, sessions
from tests.cli.conftest import Cli
from tests.cli.helpers import ok, one_error_line
from tests.factories import make_code_client, make_user

CALLBACK = "https://app.example.com/callback"


def test_create_code_flow_client(cli: Cli) -> None:
    result = ok(
        cli(
            "client",
            "create",
            "Partner App",
            "--public",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            CALLBACK,
            "--redirect-uri",
            "com.example.app:/oauth",
            "--post-logout-redirect-uri",
            "https://app.example.com/bye",
            "--third-party",
            "--json",
        )
    )
    body = json.loads(result.stdout)
    assert body["redirect_uris"] == [CALLBACK, "com.example.app:/oauth"]
    assert body["post_logout_redirect_uris"] == ["https://app.example.com/bye"]
    assert body["third_party"] is True
    shown = ok(cli("client", "show", "partner-app"))
    assert "asks consent" in shown.stdout and CALLBACK in shown.stdout


BAD_CODE_CLIENTS = {
    "no-redirect-uri": ([], "needs at least one redirect URI"),
    "plain-http": (["--redirect-uri", "http://app.example.com/cb"], "must use https"),
    "fragment": (["--redirect-uri", CALLBACK + "#x"], "fragment"),
    "wildcard": (["--redirect-uri", "https://*.example.com/cb"], "wildcards"),
    "userinfo": (["--redirect-uri", "https://a@b.example/cb"], "user information"),
    "javascript": (["--redirect-uri", "javascript:alert(1)"], "javascript"),
    "bare-scheme": (["--redirect-uri", "myapp:/cb"], "reverse domain"),
    "relative": (["--redirect-uri", "/callback"], "absolute"),
}


@pytest.mark.parametrize(
    ("args", "message"), list(BAD_CODE_CLIENTS.values()), ids=list(BAD_CODE_CLIENTS)
)
def test_create_code_client_rejects(cli: Cli, args: list[str], message: str) -> None:
    result = cli(
        "client", "create", "X App", "--grant", "authorization_code", *args, "--json"
    )
    assert message in one_error_line(result)


def test_loopback_http_is_allowed_for_native_apps(cli: Cli) -> None:
    for uri in ("http://127.0.0.1:8765/cb", "http://localhost/cb", "http://[::1]/cb"):
        name = f"Native {uri[-12:-3].replace(':', '').replace('/', '')}"
        ok(cli("client", "create", name, "--grant", "authorization_code",
               "--redirect-uri", uri, "--public"))  # fmt: skip


def seed_sessions(cli: Cli) -> tuple[str, list[str]]:
    async def make(factory):
        user = await make_user(factory)
        ids = []
        async with factory() as session:
            for _ in range(2):
                login, _token = await sessions.start(
                    LoginSessionRepository(session),
                    user,
                    now=datetime.now(UTC),
                    ttl=timedelta(hours=1),
                    ip="127.0.0.1",
                    user_agent="Test\x1bBrowser",
                )
                ids.append(str(login.id))
            await session.commit()
        return user.username, ids

    return cli.seed(make)


def live_sessions(cli: Cli) -> int:
    return len(cli.db(lambda s: LoginSessionRepository(s).list(now=datetime.now(UTC))))


def test_session_list_and_revoke_one(cli: Cli) -> None:
    username, ids = seed_sessions(cli)
    listed = json.loads(ok(cli("session", "list", "--user", username, "--json")).stdout)
    assert {row["id"] for row in listed} == set(ids)
    assert listed[0]["user_agent"] == "Test?Browser"  # control characters dropped
    assert "2 sessions" in ok(cli("session", "list")).stdout
    assert "ended 1 session" in ok(cli("session", "revoke", ids[0])).stdout
    assert live_sessions(cli) == 1
    assert "no live session" in one_error_line(cli("session", "revoke", ids[0]))


def test_session_revoke_every_session_of_a_user(cli: Cli) -> None:
    username, _ = seed_sessions(cli)
    result = ok(cli("session", "revoke", "--user", username, "--yes"))
    assert "ended 2 sessions" in result.stdout
    assert live_sessions(cli) == 0


def test_session_revoke_of_a_user_ends_every_browser_family(cli: Cli) -> None:
    """Those of sessions long gone included (an expired session's row is
    purged); the user's password-grant family stays."""

    async def make(factory):
        user = await make_user(factory)
        client = await make_code_client(factory)
        now = datetime.now(UTC)
        families = {"browser": uuid.uuid4(), "password": None}
        ids = {}
        async with factory() as session:
            for name, session_id in families.items():
                family = TokenFamily(
                    id=uuid.uuid4(),
                    user_id=user.id,
                    client_id=client.client.id,
                    created_at=now,
                    expires_at=now + timedelta(days=1),
                    session_id=session_id,
                )
                await TokenFamilyRepository(session).add(family)
                ids[name] = family.id
            await session.commit()
        return user.username, ids

    username, ids = cli.seed(make)
    ok(cli("session", "revoke", "--user", username, "--yes"))

    async def revoked(session) -> dict[str, bool]:
        families = TokenFamilyRepository(session)
        return {
            name: (await families.get(family_id)).revoked_at is not None
            for name, family_id in ids.items()
        }

    assert cli.db(revoked) == {"browser": True, "password": False}


def test_session_revoke_needs_one_target(cli: Cli) -> None:
    assert "not both" in one_error_line(cli("session", "revoke"))


def test_consent_list_and_revoke(cli: Cli) -> None:
    async def make(factory):
        user = await make_user(factory)
        client = await make_code_client(factory, is_third_party=True)
        async with factory() as session:
            await consent.grant(
                ConsentRepository(session),
                user.id,
                client.client,
                ["openid", "profile"],
                now=datetime.now(UTC),
            )
            await session.commit()
        return user.username, client.client_id

    username, client_id = cli.seed(make)
    listed = json.loads(ok(cli("consent", "list", "--json")).stdout)
    assert listed == [
        {
            "user_id": listed[0]["user_id"],
            "username": username,
            "client_id": client_id,
            "scope": "openid profile",
            "granted_at": listed[0]["granted_at"],
        }
    ]
    result = ok(cli("consent", "revoke", username, "--client", client_id))
    assert "revoked 1 consent" in result.stdout
    assert json.loads(ok(cli("consent", "list", "--json")).stdout) == []
    assert "no client" in one_error_line(
        cli("consent", "revoke", username, "--client", "nope")
    )
