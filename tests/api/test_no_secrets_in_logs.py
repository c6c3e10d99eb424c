"""Secrets planted in requests and CLI calls never reach the log, even at DEBUG."""

import asyncio
import base64
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx2
import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from authserver.core.config import Settings, get_settings
from authserver.db.session import (
    SessionFactory,
    create_engine,
    create_session_factory,
)
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import Client, User
from authserver.services.clients import rotate_client_secret
from tests import factories
from tests.api.helpers import (
    INTROSPECT_URL,
    REVOKE_URL,
    TOKEN_URL,
    USERS_URL,
    bearer,
    password_grant,
    refresh_grant,
    tokens,
)
from tests.factories import (
    CALLBACK,
    DEFAULT_PASSWORD,
    make_client,
    make_code_client,
    make_user,
)
from tests.live import free_socket, live_server, live_settings
from tests.logs import CapturedLogs, capture_logs, server_logging
from tests.oauth_flow import authorize_params, new_pkce, query_of
from tests.oauth_flow import sign_in as page_sign_in

PASSWORD = "Plant3d-Passw0rd-" + uuid.uuid4().hex[:8]
OPAQUE_BEARER = "opaque-bearer-" + uuid.uuid4().hex
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}


def signing_key_pem(keys_dir: Path) -> str:
    return next(keys_dir.glob("*.pem")).read_text()


def assert_absent(logs: CapturedLogs, secrets: list[str]) -> None:
    assert logs.records(), "nothing captured: the capture handler was replaced"
    text = logs.text
    for secret in secrets:
        for form in {secret, quote_plus(secret)}:
            assert form not in text, f"a planted secret is in the log: {form[:12]}..."


def pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("---")]


async def test_requests_with_secrets_leave_none_in_the_log(
    api, session_factory, keys_dir
):
    client = await make_client(session_factory)
    user = await make_user(session_factory, password=PASSWORD)
    assert client.secret is not None
    pem = signing_key_pem(keys_dir)
    basic = base64.b64encode(f"{client.client_id}:{client.secret}".encode()).decode()
    form = {"grant_type": "password", "username": user.username, "password": PASSWORD}

    with capture_logs() as logs:
        login = tokens(
            await password_grant(api, client, user.username, PASSWORD, scope="openid")
        )
        rotated = tokens(await refresh_grant(api, client, login["refresh_token"]))
        failures = [
            await password_grant(api, client, user.username, "x" + PASSWORD),
            await api.post(
                TOKEN_URL, data=form, auth=(client.client_id, client.secret + "x")
            ),
            await api.post(
                TOKEN_URL,
                data={**form, "client_secret": client.secret},
                auth=client.basic_auth,
            ),
            await api.post(TOKEN_URL, json={**form, "client_secret": client.secret}),
            await api.post(
                TOKEN_URL,
                content=f"{quote_plus('password')}={PASSWORD}&password={PASSWORD}",
                headers=FORM_TYPE,
                auth=client.basic_auth,
            ),
            await api.post(
                TOKEN_URL, data={**form, "password": pem}, auth=client.basic_auth
            ),
            await api.post(TOKEN_URL, data=form, headers={"Authorization": "Basic !"}),
            await refresh_grant(api, client, login["refresh_token"]),  # replayed
            await refresh_grant(api, client, rotated["refresh_token"] + "x"),
            await refresh_grant(api, client, login["access_token"]),  # wrong typ
        ]
        await api.get(
            "/.well-known/jwks.json",
            params={"access_token": login["access_token"], "key": pem},
            headers={"Authorization": f"Bearer {login['access_token']}"},
        )
        await api.get("/no/such/path", headers={"Authorization": f"Basic {basic}"})
        await api.get("/health/ready", headers={"Authorization": OPAQUE_BEARER})

    assert all(r.status_code < 500 for r in failures)
    planted = [
        PASSWORD,
        client.secret,
        basic,
        OPAQUE_BEARER,
        *(login[k] for k in ("access_token", "refresh_token", "id_token")),
        *(rotated[k] for k in ("access_token", "refresh_token", "id_token")),
        *pem_body_lines(pem),
    ]
    assert_absent(logs, planted)
    assert logs.named("http_request")  # the lines are there, only the secrets not


def test_cli_calls_with_secrets_leave_none_in_the_log(
    settings: Settings, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    from cli.main import app as authctl

    runner = CliRunner()
    if runner.invoke(authctl, ["user", "create", "--help"]).exit_code != 0:
        pytest.skip("authctl user create is not there yet")
    env = {
        "AUTH_DATABASE_URL": settings.database_url,
        "AUTH_KEYS_DIR": str(keys_dir),
        "AUTH_ISSUER": settings.issuer,
        "AUTH_BCRYPT_ROUNDS": "4",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    username = f"cli-{uuid.uuid4().hex[:8]}"
    get_settings.cache_clear()
    try:
        with capture_logs() as logs:
            created = runner.invoke(
                authctl,
                ["user", "create", username, "--password-stdin"],
                input=PASSWORD + "\n",
            )
            again = runner.invoke(
                authctl,
                ["user", "create", username, "--password-stdin"],
                input=PASSWORD + "\n",
            )
    finally:
        get_settings.cache_clear()
        asyncio.run(_delete_user(settings, username))

    assert created.exit_code == 0, created.output
    assert again.exit_code == 1
    assert PASSWORD not in created.output + again.output
    assert_absent(logs, [PASSWORD])


async def _delete_user(settings: Settings, username: str) -> None:
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            await session.execute(delete(User).where(User.username == username))
            await session.commit()
    finally:
        await engine.dispose()


async def test_browser_sign_in_leaves_no_secret_in_the_log(api, session_factory):
    client = await make_code_client(session_factory)
    user = await make_user(session_factory, password=PASSWORD)
    pkce = new_pkce()
    with capture_logs() as logs:
        params = authorize_params(client.client_id, CALLBACK, pkce)
        wrong = await page_sign_in(api, params, user.username, "x" + PASSWORD)
        answer = await page_sign_in(api, params, user.username, PASSWORD)
        code = query_of(answer.headers["location"])["code"]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": pkce.verifier,
            **client.form(),
        }
        issued = tokens(await api.post(TOKEN_URL, data=form))
        replay = await api.post(TOKEN_URL, data=form)
    assert wrong.status_code == 400 and replay.status_code == 400
    cookie = api.cookies["authserver_session"]
    assert_absent(
        logs,
        [
            PASSWORD,
            code,
            pkce.verifier,
            cookie,
            issued["refresh_token"],
            issued["access_token"],
        ],
    )


def fragments(secret: str | bytes) -> set[str]:
    """Ways a secret could be printed: as is, URL-encoded; bytes also as their
    repr (what a driver's parameter tuple shows), hex and base64."""
    if isinstance(secret, str):
        return {secret, quote_plus(secret)}
    shown = repr(secret)[2:-1]
    middle = shown[len(shown) // 4 : len(shown) // 4 + 24]  # survives truncation
    return {middle, secret.hex(), base64.b64encode(secret).decode()}


def assert_none_logged(logs: CapturedLogs, secrets: dict[str, str | bytes]) -> None:
    """Neither the raw lines nor the JSON-decoded values hold any secret."""
    assert logs.records(), "nothing captured"
    decoded = "\n".join(json.dumps(r, ensure_ascii=False) for r in logs.records())
    values = "\n".join(str(v) for r in logs.records() for v in r.values())
    for name, secret in secrets.items():
        for form in fragments(secret):
            for text in (logs.text, decoded, values):
                assert form not in text, f"{name} is in the log: {form[:12]}..."


async def test_a_full_flow_at_debug_logs_no_secret_hash_or_blob(
    database_url, tmp_path, clean_db, session_factory
):
    """At AUTH_LOG_LEVEL=DEBUG on a real server: user create, password grant,
    refresh and its retry, introspect, revoke, password change and client secret
    rotation leave no password, hash, secret, token or sealed blob in any line,
    whoever wrote it (our code, uvicorn, SQLAlchemy, aiosqlite, asyncpg, httpx)."""
    sock = free_socket()
    settings = live_settings(database_url, tmp_path / "keys", sock)
    scopes = ("openid", "profile", "email", "admin")
    secrets: dict[str, str | bytes] = {"password": PASSWORD, "new": NEW_PASSWORD}
    with server_logging("DEBUG") as logs:
        async with live_server(settings, sock) as url:
            async with httpx2.AsyncClient(base_url=url) as http:
                client = await make_client(session_factory, scopes=scopes)
                admin = await make_user(session_factory, is_admin=True)
                admin_token = await live_token(http, client, admin.username)
                created = await http.post(
                    USERS_URL,
                    json={"username": "dora", "password": PASSWORD},
                    headers=bearer(admin_token["access_token"]),
                )
                assert created.status_code == 201, created.text
                user = await stored(session_factory, User, created.json()["id"])
                secrets["password_hash"] = user.password_hash
                login = await live_token(http, client, "dora", PASSWORD)
                refresh = {
                    "grant_type": "refresh_token",
                    "refresh_token": login["refresh_token"],
                }
                rotated = ok(
                    await http.post(TOKEN_URL, data=refresh, auth=client.basic_auth)
                )
                retried = ok(
                    await http.post(TOKEN_URL, data=refresh, auth=client.basic_auth)
                )
                assert retried == rotated  # the retry got the same answer again
                introspected = await http.post(
                    INTROSPECT_URL,
                    data={"token": rotated["access_token"]},
                    auth=client.basic_auth,
                )
                assert introspected.json()["active"] is True
                changed = await http.post(
                    f"{USERS_URL}/me/password",
                    json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                    headers=bearer(rotated["access_token"]),
                )
                assert changed.status_code == 204, changed.text
                again = await live_token(http, client, "dora", NEW_PASSWORD)
                revoked = await http.post(
                    REVOKE_URL,
                    data={"token": again["refresh_token"]},
                    auth=client.basic_auth,
                )
                assert revoked.status_code == 200
                new_secret = await rotate_secret(session_factory, client.client_id)
                dead = await http.post(
                    INTROSPECT_URL,
                    data={"token": again["refresh_token"]},
                    auth=(client.client_id, new_secret),
                )
                assert dead.json() == {"active": False}

    user = await stored(session_factory, User, user.id)
    rotated_client = await stored(session_factory, Client, client.client.id)
    assert client.secret is not None and rotated_client.secret_hash is not None
    secrets |= {
        "new_password_hash": user.password_hash,
        "client_secret": client.secret,
        "client_secret_hash": client.client.secret_hash or "",
        "new_client_secret": new_secret,
        "new_client_secret_hash": rotated_client.secret_hash,
        **{f"login_{k}": login[k] for k in ("access_token", "refresh_token")},
        **{f"rotated_{k}": rotated[k] for k in ("access_token", "refresh_token")},
        **{f"again_{k}": again[k] for k in ("access_token", "refresh_token")},
        "admin_access_token": admin_token["access_token"],
    }
    assert secrets["password_hash"] != secrets["new_password_hash"]
    assert_none_logged(logs, secrets)
    assert logs.named("http_request")  # the server did log, only no secrets


NEW_PASSWORD = "An0ther-Planted-" + uuid.uuid4().hex[:8]


async def test_sql_logging_opt_in_shows_statements_never_values(
    session_factory, clean_db
):
    """AUTH_LOG_SQL=true: each statement at INFO, no bound value, no row."""
    with server_logging("DEBUG", log_sql=True) as logs:
        user = await make_user(session_factory, password=PASSWORD)
        await stored(session_factory, User, user.id)

    statements = [
        r["message"] for r in logs.records() if r["logger"].startswith("sqlalchemy")
    ]
    assert any(s.startswith("INSERT INTO users") for s in statements), statements
    assert all(
        r["level"] != "DEBUG"
        for r in logs.records()
        if r["logger"].startswith("sqlalchemy")
    )
    assert_none_logged(
        logs,
        {"password_hash": user.password_hash, "username": user.username},
    )


def ok(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def live_token(
    http: httpx2.AsyncClient,
    client: factories.TestClient,
    username: str,
    password: str = DEFAULT_PASSWORD,
) -> dict[str, Any]:
    form = {"grant_type": "password", "username": username, "password": password}
    return ok(await http.post(TOKEN_URL, data=form, auth=client.basic_auth))


async def stored(session_factory: SessionFactory, model: type[Any], key: Any) -> Any:
    async with session_factory() as session:
        return await session.get(model, uuid.UUID(str(key)))


async def rotate_secret(session_factory: SessionFactory, client_id: str) -> str:
    """What `authctl client rotate-secret` does, through the same service."""
    async with session_factory() as session:
        return await rotate_client_secret(client_id, UnitOfWork.joining(session))
