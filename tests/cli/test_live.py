"""authctl in another process changes what a running server does, without a restart.

The server runs on the test event loop; authctl runs as the installed console
script in a worker thread, so the loop keeps serving meanwhile.
"""

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import jwt as pyjwt

from authserver.db.session import SessionFactory
from tests import factories
from tests.cli.helpers import cli_env, run_authctl
from tests.factories import DEFAULT_PASSWORD, make_client, make_user
from tests.live import free_socket, live_server, live_settings


@asynccontextmanager
async def server(database_url: str, keys_dir: Path) -> AsyncIterator[str]:
    sock = free_socket()
    async with live_server(live_settings(database_url, keys_dir, sock), sock) as url:
        yield url


async def authctl(
    *args: str, database_url: str, keys_dir: Path, cwd: Path
) -> "subprocess.CompletedProcess[str]":
    env = cli_env(database_url, keys_dir)
    return await asyncio.to_thread(run_authctl, *args, env=env, cwd=cwd)


async def token(
    http: httpx2.AsyncClient, client: factories.TestClient, form: dict[str, str]
) -> httpx2.Response:
    return await http.post("/oauth2/token", data=form, auth=client.basic_auth)


async def login(
    http: httpx2.AsyncClient, client: factories.TestClient, username: str
) -> dict[str, Any]:
    form = {"grant_type": "password", "username": username}
    response = await token(http, client, {**form, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def verify(access_token: str, jwks: dict[str, Any], issuer: str) -> dict[str, Any]:
    """Check the signature with the published key named by the token's kid."""
    kid = pyjwt.get_unverified_header(access_token)["kid"]
    key = pyjwt.PyJWKSet.from_dict(jwks)[kid]
    claims: dict[str, Any] = pyjwt.decode(
        access_token, key.key, algorithms=["RS256"], audience=issuer, issuer=issuer
    )
    return claims


async def test_key_rotate_now_from_another_process(
    database_url: str, session_factory: SessionFactory, clean_db: None, tmp_path: Path
) -> None:
    client = await make_client(session_factory, scopes=("openid",))
    user = await make_user(session_factory)
    keys_dir = tmp_path / "keys"
    async with (
        server(database_url, keys_dir) as url,
        httpx2.AsyncClient(base_url=url) as http,
    ):
        first = (await login(http, client, user.username))["access_token"]
        old_kid = pyjwt.get_unverified_header(first)["kid"]

        rotated = await authctl(
            "key", "rotate", "--now", "--json",
            database_url=database_url, keys_dir=keys_dir, cwd=tmp_path,
        )  # fmt: skip
        assert rotated.returncode == 0, rotated.stderr
        new_kid = json.loads(rotated.stdout)["kid"]

        second = (await login(http, client, user.username))["access_token"]
        jwks = (await http.get("/.well-known/jwks.json")).json()

    assert pyjwt.get_unverified_header(second)["kid"] == new_kid != old_kid
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, new_kid}
    for access_token in (first, second):
        assert verify(access_token, jwks, url)["sub"] == str(user.id)


async def test_disabled_user_refresh_token_is_refused(
    database_url: str, session_factory: SessionFactory, clean_db: None, tmp_path: Path
) -> None:
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    keys_dir = tmp_path / "keys"
    async with (
        server(database_url, keys_dir) as url,
        httpx2.AsyncClient(base_url=url) as http,
    ):
        tokens = await login(http, client, user.username)
        refresh = {"grant_type": "refresh_token"}
        renewed = await token(
            http, client, {**refresh, "refresh_token": tokens["refresh_token"]}
        )
        assert renewed.status_code == 200, renewed.text  # works before the CLI acts

        disabled = await authctl(
            "user", "disable", user.username,
            database_url=database_url, keys_dir=keys_dir, cwd=tmp_path,
        )  # fmt: skip
        assert disabled.returncode == 0, disabled.stderr
        assert f"disabled {user.username}; revoked" in disabled.stdout

        refused = await token(
            http, client, {**refresh, "refresh_token": renewed.json()["refresh_token"]}
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
        login_again = await token(
            http,
            client,
            {
                "grant_type": "password",
                "username": user.username,
                "password": DEFAULT_PASSWORD,
            },
        )
        assert login_again.json()["error"] == "invalid_grant"
