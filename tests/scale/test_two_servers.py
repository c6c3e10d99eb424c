"""Scale-out: two separate server processes over one PostgreSQL and one key store."""

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from authserver.db.session import create_engine, create_session_factory
from authserver.services.keystore import keystore_from_settings
from tests.conftest import (
    create_pg_database,
    drop_pg_database,
    make_settings,
    require_postgres,
)
from tests.factories import DEFAULT_PASSWORD, make_client, make_user

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "authserver.main:app"]
    with log.open("wb") as output:  # the child keeps its own handle
        return subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx2.get(f"{url}/.well-known/jwks.json", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start: {log.read_text()[-2000:]}")


@pytest.fixture
async def cluster(tmp_path: Path) -> Iterator[dict]:
    await require_postgres()
    database_url = await create_pg_database()
    keys = tmp_path / "keys"
    # One issuer for the cluster, as behind a load balancer.
    issuer = "http://127.0.0.1:1"
    env = {
        **os.environ,
        "AUTH_DATABASE_URL": database_url,
        "AUTH_KEYS_DIR": str(keys),
        "AUTH_ISSUER": issuer,
        "AUTH_BCRYPT_ROUNDS": "4",
        "AUTH_KEYSTORE_CHECK_INTERVAL": "0",
        "AUTH_REFRESH_RETRY_WINDOW": "0",
    }
    ports = [_free_port(), _free_port()]
    processes = [_start(p, env, tmp_path / f"server-{p}.log") for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    settings = make_settings(database_url, keys, issuer=issuer)
    engine = create_engine(settings)
    try:
        for url, process, port in zip(urls, processes, ports):
            _wait_ready(url, process, tmp_path / f"server-{port}.log")
        yield {
            "urls": urls,
            "settings": settings,
            "session_factory": create_session_factory(engine),
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        await engine.dispose()
        await drop_pg_database(database_url)


async def _token(http, url, auth, **data) -> httpx2.Response:
    return await http.post(f"{url}/oauth2/token", data=data, auth=auth)


async def test_refresh_rotation_and_reuse_span_both_servers(cluster):
    a, b = cluster["urls"]
    client = await make_client(cluster["session_factory"])
    user = await make_user(cluster["session_factory"])
    auth = client.basic_auth
    async with httpx2.AsyncClient(timeout=10) as http:
        login = await _token(
            http,
            a,
            auth,
            grant_type="password",
            username=user.username,
            password=DEFAULT_PASSWORD,
        )
        assert login.status_code == 200, login.text
        first = login.json()["refresh_token"]

        rotated_at_b = await _token(
            http, b, auth, grant_type="refresh_token", refresh_token=first
        )
        assert rotated_at_b.status_code == 200, rotated_at_b.text
        second = rotated_at_b.json()["refresh_token"]

        # Reuse of the first token, detected at A, kills the family at B too.
        reuse_at_a = await _token(
            http, a, auth, grant_type="refresh_token", refresh_token=first
        )
        newest_at_b = await _token(
            http, b, auth, grant_type="refresh_token", refresh_token=second
        )

    assert reuse_at_a.json()["error"] == "invalid_grant"
    assert newest_at_b.status_code == 400
    assert newest_at_b.json()["error"] == "invalid_grant"


async def test_key_rotation_is_served_by_both(cluster):
    a, b = cluster["urls"]
    client = await make_client(cluster["session_factory"])
    user = await make_user(cluster["session_factory"])
    keystore = keystore_from_settings(cluster["settings"])

    new_key = await keystore.rotate(immediate=True)

    async with httpx2.AsyncClient(timeout=10) as http:
        for url in (a, b):
            kids = {
                k["kid"]
                for k in (await http.get(f"{url}/.well-known/jwks.json")).json()["keys"]
            }
            assert new_key.kid in kids and len(kids) == 2
            login = await _token(
                http,
                url,
                client.basic_auth,
                grant_type="password",
                username=user.username,
                password=DEFAULT_PASSWORD,
            )
            assert _kid(login.json()["access_token"]) == new_key.kid


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return str(
        json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    )


async def test_user_disabled_through_one_is_refused_by_the_other(cluster):
    a, b = cluster["urls"]
    factory = cluster["session_factory"]
    admin_client = await make_client(factory, scopes=("profile", "admin"))
    app_client = await make_client(factory)
    admin = await make_user(factory, is_admin=True)
    user = await make_user(factory)
    async with httpx2.AsyncClient(timeout=10) as http:
        admin_login = await _token(
            http,
            a,
            admin_client.basic_auth,
            grant_type="password",
            username=admin.username,
            password=DEFAULT_PASSWORD,
            scope="admin",
        )
        user_login = await _token(
            http,
            b,
            app_client.basic_auth,
            grant_type="password",
            username=user.username,
            password=DEFAULT_PASSWORD,
        )
        assert admin_login.status_code == user_login.status_code == 200

        disabled = await http.patch(
            f"{a}/api/v1/users/{user.id}",
            json={"is_active": False},
            headers={"Authorization": f"Bearer {admin_login.json()['access_token']}"},
        )
        assert disabled.status_code == 200, disabled.text

        refresh_at_b = await _token(
            http,
            b,
            app_client.basic_auth,
            grant_type="refresh_token",
            refresh_token=user_login.json()["refresh_token"],
        )
        login_at_b = await _token(
            http,
            b,
            app_client.basic_auth,
            grant_type="password",
            username=user.username,
            password=DEFAULT_PASSWORD,
        )
    assert refresh_at_b.json()["error"] == "invalid_grant"
    assert login_at_b.json()["error"] == "invalid_grant"
