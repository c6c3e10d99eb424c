"""Secrets planted in requests and CLI calls never reach the log, even at DEBUG."""

import asyncio
import base64
import uuid
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from authserver.core.config import Settings, get_settings
from authserver.db.session import create_engine, create_session_factory
from authserver.models import User
from tests.api.helpers import TOKEN_URL, password_grant, refresh_grant, tokens
from tests.factories import CALLBACK, make_client, make_code_client, make_user
from tests.logs import CapturedLogs, capture_logs
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
