"""The benchmark against another server by URL: secrets from the environment.

Our own server, started here on a free port, stands in for "another OAuth
server": the benchmark is given only its URL, a client id and a username on
the command line, and the secrets in BENCH_TARGET_CLIENT_SECRET and
BENCH_TARGET_PASSWORD. A wrong secret must show up as errors, so the test
also proves the secrets were taken from there.
"""

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from authserver.db.session import create_engine, create_session_factory
from tests.factories import DEFAULT_PASSWORD, make_client, make_user
from tests.live import free_socket, live_server, live_settings

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("password", "client_credentials")
GRANTS = ("password", "refresh_token", "client_credentials")

# One database is enough: this checks the tool's plumbing, not the server.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def bench_against(
    url: str, client_id: str, username: str, env: dict[str, str], out: Path
) -> tuple[int, str, dict[str, Any] | None]:
    command = [
        *(sys.executable, "-m", "bench", "--target-url", url),
        *("--target-name", "other", "--client-id", client_id),
        *("--username", username, "--scenarios", ",".join(SCENARIOS)),
        *("--duration", "1", "--warmup", "0.5", "--concurrency", "2"),
        *("--bcrypt-rounds", "4", "--json-out", str(out)),
    ]
    # Not subprocess.run: the server under test runs on this event loop.
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    data = json.loads(out.read_text()) if out.exists() else None
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), data


def target_rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["scenario"]: r for r in data["results"] if r["server"] == "other"}


async def test_another_server_by_url_with_secrets_from_the_environment(
    database_url: str, tmp_path: Path, clean_db: None
) -> None:
    sock = free_socket()
    settings = live_settings(database_url, tmp_path / "keys", sock)
    async with live_server(settings, sock) as url:
        engine = create_engine(settings)
        try:
            factory = create_session_factory(engine)
            client = await make_client(factory, grant_types=GRANTS)
            user = await make_user(factory)
        finally:
            await engine.dispose()
        assert client.secret is not None
        secrets = {
            "BENCH_TARGET_CLIENT_SECRET": client.secret,
            "BENCH_TARGET_PASSWORD": DEFAULT_PASSWORD,
        }
        good = await bench_against(
            url, client.client.client_id, user.username, secrets, tmp_path / "a.json"
        )
        wrong = {**secrets, "BENCH_TARGET_CLIENT_SECRET": "not-the-secret"}
        bad = await bench_against(
            url, client.client.client_id, user.username, wrong, tmp_path / "b.json"
        )

    code, stdout, data = good
    assert code == 0, stdout[-3000:]
    assert data is not None
    assert data["meta"]["command"].count(client.secret) == 0
    assert client.secret not in stdout and DEFAULT_PASSWORD not in stdout
    rows = target_rows(data)
    assert set(rows) == set(SCENARIOS)
    for name, row in rows.items():
        assert row["status"] == "ok" and row["requests"] > 0, (name, row)
        assert row["errors"] == 0, (name, row["error_samples"])

    _, bad_stdout, bad_data = bad
    assert bad_data is not None, bad_stdout[-3000:]
    refused = target_rows(bad_data)
    assert set(refused) == set(SCENARIOS)
    for name, row in refused.items():
        assert row["requests"] == 0, (name, row)
        assert set(row["error_samples"]) == {"401 invalid_client"}, (name, row)
