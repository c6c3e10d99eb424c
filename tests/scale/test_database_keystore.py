"""The database key store across processes on PostgreSQL: real uvicorn servers
with no shared key directory, `authctl` as a third process, a cold start of
four workers, a wrong passphrase, and the bytes PostgreSQL holds."""

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from authserver.db import migrate
from authserver.db.session import create_engine, create_session_factory
from authserver.services.keystore import keystore_from_settings
from tests.conftest import (
    create_pg_database,
    drop_pg_database,
    make_settings,
    require_postgres,
)
from tests.factories import DEFAULT_PASSWORD, make_client, make_user
from tests.scale.test_two_servers import _free_port

pytestmark = pytest.mark.postgres

PASSPHRASE = "a long passphrase for the signing keys"
AUTHCTL = [sys.executable, "-c", "from cli.main import main; main()"]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh PostgreSQL database at the latest schema."""
    await require_postgres()
    url = await create_pg_database()
    engine = create_engine(make_settings(url, tmp_path / "unused"))
    await migrate.upgrade(engine)
    await engine.dispose()
    yield url
    await drop_pg_database(url)


def server_env(database_url: str, keys_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "AUTH_DATABASE_URL": database_url,
        "AUTH_KEYS_STORE": "database",
        "AUTH_KEYS_PASSPHRASE": PASSPHRASE,
        # Each process its own (absent) directory: nothing is shared but the DB.
        "AUTH_KEYS_DIR": str(keys_dir),
        "AUTH_ISSUER": "http://127.0.0.1:1",
        "AUTH_BCRYPT_ROUNDS": "4",
        "AUTH_KEYSTORE_CHECK_INTERVAL": "0.2",
        "AUTH_AUTO_MIGRATE": "false",
        **extra,
    }


def start(
    port: int, env: dict[str, str], log: Path, *args: str
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "authserver.main:app"]
    with log.open("wb") as output:
        return subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), *args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx2.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start: {log.read_text()[-2000:]}")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=20)


def jwks_kids(url: str) -> set[str]:
    keys = httpx2.get(f"{url}/.well-known/jwks.json", timeout=5).json()["keys"]
    return {key["kid"] for key in keys}


async def test_two_servers_pick_up_a_rotation_made_by_authctl(database, tmp_path):
    ports = [_free_port(), _free_port()]
    logs = [tmp_path / f"server-{port}.log" for port in ports]
    processes = [
        start(port, server_env(database, tmp_path / f"keys-{port}"), log)
        for port, log in zip(ports, logs)
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    settings = make_settings(database, tmp_path / "unused")
    engine = create_engine(settings)
    try:
        for url, process, log in zip(urls, processes, logs):
            wait_ready(url, process, log)
        [first] = {frozenset(jwks_kids(url)) for url in urls}  # one key, both
        assert len(first) == 1

        rotated = subprocess.run(
            [*AUTHCTL, "key", "rotate", "--now", "--json"],
            env=server_env(database, tmp_path / "keys-authctl"),
            capture_output=True,
            timeout=60,
        )
        assert rotated.returncode == 0, rotated.stderr
        new_kid = json.loads(rotated.stdout)["kid"]

        # Each server notices by polling; bounded wait, no timing asserted.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            new_kid in jwks_kids(url) for url in urls
        ):
            time.sleep(0.1)
        assert all(jwks_kids(url) == {*first, new_kid} for url in urls)
        assert not any((tmp_path / f"keys-{port}").exists() for port in ports)

        # A token from one server now carries the new kid and verifies with
        # the other server's JWKS (PyJWT, independently of our code).
        factory = create_session_factory(engine)
        client = await make_client(factory)
        user = await make_user(factory)
        deadline = time.monotonic() + 30
        while True:
            response = httpx2.post(
                f"{urls[0]}/oauth2/token",
                data={
                    "grant_type": "password",
                    "username": user.username,
                    "password": DEFAULT_PASSWORD,
                },
                auth=client.basic_auth,
                timeout=10,
            )
            assert response.status_code == 200, response.text
            token = response.json()["access_token"]
            if jwt.get_unverified_header(token)["kid"] == new_kid:
                break
            assert time.monotonic() < deadline, "server A never signed with the new key"
            time.sleep(0.1)
        signing_key = jwt.PyJWKClient(
            f"{urls[1]}/.well-known/jwks.json"
        ).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256"],
            audience="http://127.0.0.1:1",
            issuer="http://127.0.0.1:1",
        )
        assert claims["sub"]
    finally:
        stop(processes)
        await engine.dispose()


async def test_four_workers_starting_together_create_one_key(database, tmp_path):
    port = _free_port()
    log = tmp_path / "server.log"
    process = start(
        port, server_env(database, tmp_path / "keys"), log, "--workers", "4"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        # Every worker is up once each has answered; ask until we have heard
        # from them all (bounded), and every answer names the same one key.
        answers = [jwks_kids(url) for _ in range(40)]
    finally:
        stop([process])
    settings = make_settings(database, tmp_path / "unused")
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            kids = (await conn.execute(text("SELECT kid FROM signing_keys"))).all()
    finally:
        await engine.dispose()
    assert len(kids) == 1
    assert all(answer == {kids[0][0]} for answer in answers)
    assert log.read_text().count("signing_key_created") == 1


async def test_a_wrong_passphrase_is_one_clear_error(database, tmp_path):
    env = server_env(database, tmp_path / "keys")
    store = keystore_from_settings(
        make_settings(
            database,
            tmp_path / "keys",
            keys_store="database",
            keys_passphrase=PASSPHRASE,
        )
    )
    await store.ensure_signing_key()
    [record] = await store.records()
    await store.aclose()
    wrong = {**env, "AUTH_KEYS_PASSPHRASE": "not the right passphrase at all"}

    for command in (
        ["key", "list"],
        ["key", "rotate"],
        ["serve", "--port", str(_free_port())],
    ):
        result = subprocess.run(
            [*AUTHCTL, *command], env=wrong, capture_output=True, timeout=60, text=True
        )
        assert result.returncode == 1, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert f"key {record.kid} (database key store)" in lines[0]
        assert "wrong AUTH_KEYS_PASSPHRASE" in lines[0]
        assert "not the right" not in result.stderr + result.stdout
        assert PASSPHRASE not in result.stderr + result.stdout


async def test_the_database_never_holds_a_private_key_in_the_clear(database, tmp_path):
    settings = make_settings(
        database, tmp_path / "keys", keys_store="database", keys_passphrase=PASSPHRASE
    )
    store = keystore_from_settings(settings)
    await store.ensure_signing_key()
    await store.rotate()
    keys = await store.stored_keys()
    await store.aclose()
    secrets: list[bytes] = []
    for stored in keys:
        private = stored.key.as_dict(private=True)
        secrets.append(stored.key.as_der(private=True))
        secrets.append(stored.key.as_pem(private=True))
        for name in ("d", "p", "q"):
            b64 = private[name]
            raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            # Raw big-endian, hex (as a text dump shows bytea) and base64url.
            secrets += [raw, raw.hex().encode(), b64.encode()]
    secrets.append(b"PRIVATE KEY")

    url = make_url(database)
    dump = subprocess.run(
        [
            "pg_dump",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            "--data-only",
            "-t",
            "signing_keys",
            url.database or "",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    binary = subprocess.run(
        [
            "psql",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            "-d",
            url.database or "",
            "-c",
            "COPY signing_keys TO STDOUT (FORMAT binary)",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout

    assert len(keys) == 2 and dump.count(b"\n") > 2
    for name, blob in (("pg_dump", dump), ("COPY binary", binary)):
        found = [s[:16] for s in secrets if s in blob]
        assert found == [], f"{name} holds private key material"
    # The public halves are there (n), so the search looks at the right bytes.
    n = keys[0].key.as_dict()["n"].encode()
    assert n in dump
