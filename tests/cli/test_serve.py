"""authctl serve: prepares the database and the key store, then hands over to uvicorn."""

import logging
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authserver.db import migrate
from authserver.services.keystore import MANIFEST
from tests.cli.conftest import Cli
from tests.cli.helpers import failed, ok, one_error_line


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The supervisor replaced by a recorder: the test must not start a server
    (tests/e2e/test_balanced_workers.py runs the real one)."""
    calls: list[dict[str, Any]] = []

    def record(app: str, **options: Any) -> None:
        calls.append({"app": app, **options})

    monkeypatch.setattr("authserver.core.supervisor.run", record)
    # The real call points the root logger at CliRunner's stdout, which is
    # closed after the test; later tests would log into a closed file.
    monkeypatch.setattr(
        "authserver.core.logging.configure_logging", lambda *a, **k: None
    )
    return calls


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on (serve checks that it can bind it)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process (this one) listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def unmigrated(cli: Cli) -> bool:
    result = cli("db", "current", "--json")
    if result.exit_code == 1 and "error: no database at" in result.stderr:
        return True  # SQLite: not even created
    return '"current": null' in ok(result).stdout


def test_serve_migrates_creates_the_first_key_and_runs_uvicorn(
    cli_for: Callable[..., Cli],
    sqlite_url: str,
    uvicorn_calls: list[dict[str, Any]],
    free_port: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="authserver.serve")
    cli = cli_for(sqlite_url)
    port = str(free_port)
    result = ok(cli("serve", "--host", "0.0.0.0", "--port", port, "--workers", "2"))
    assert result.stdout == ""  # every line is a log record
    [created, serving] = caplog.records
    assert created.getMessage() == "created"
    assert created.schema == f"created at revision {migrate.head_revision()}"
    assert created.database == str(Path(sqlite_url.split(":///")[1]).resolve())
    assert created.signing_key == "created"
    assert created.keys_dir == str(cli.keys_dir.resolve())
    assert serving.url == f"http://0.0.0.0:{port}"
    [call] = uvicorn_calls
    assert call["app"] == "authserver.main:app"  # an import string: workers need it
    assert (call["host"], call["port"], call["workers"]) == ("0.0.0.0", free_port, 2)
    assert call["reload"] is False
    # Hardened by default (tests/e2e/test_http_limits.py shows what it does).
    assert call["http"] == "authserver.serving:LimitedHttpToolsProtocol"
    assert call["limit_concurrency"] == cli.settings.http_max_connections
    assert (cli.keys_dir / MANIFEST).is_file()
    status = ok(cli("db", "current", "--json")).stdout
    assert f'"current": "{migrate.head_revision()}"' in status


def test_serve_reload(
    cli_for: Callable[..., Cli],
    sqlite_url: str,
    uvicorn_calls: list[dict[str, Any]],
    free_port: int,
) -> None:
    ok(cli_for(sqlite_url)("serve", "--reload", "--port", str(free_port)))
    assert uvicorn_calls[0]["reload"] is True and uvicorn_calls[0]["workers"] is None


@pytest.mark.parametrize(
    "args",
    [["--reload", "--workers", "2"], ["--port", "0"], ["--workers", "0"]],
    ids=["reload-with-workers", "port-0", "no-workers"],
)
def test_serve_usage_errors(
    cli_for: Callable[..., Cli],
    sqlite_url: str,
    uvicorn_calls: list[dict[str, Any]],
    args: list[str],
) -> None:
    failed(cli_for(sqlite_url)("serve", *args), code=2)
    assert uvicorn_calls == []


def test_serve_with_unreachable_database(
    cli_for: Callable[..., Cli], uvicorn_calls: list[dict[str, Any]], free_port: int
) -> None:
    cli = cli_for("postgresql+asyncpg://postgres@127.0.0.1:1/authserver")
    result = cli("serve", "--port", str(free_port))
    assert "cannot reach the database" in one_error_line(result)
    assert uvicorn_calls == []


def test_serve_with_unusable_key_store(
    cli_for: Callable[..., Cli],
    sqlite_url: str,
    uvicorn_calls: list[dict[str, Any]],
    free_port: int,
) -> None:
    cli = cli_for(sqlite_url)
    cli.keys_dir.parent.mkdir(parents=True, exist_ok=True)
    cli.keys_dir.write_text("a file where the key directory should be")
    assert "key store" in one_error_line(cli("serve", "--port", str(free_port)))
    assert uvicorn_calls == []


def test_serve_on_a_busy_port_fails_before_migrating(
    cli_for: Callable[..., Cli],
    sqlite_url: str,
    uvicorn_calls: list[dict[str, Any]],
    busy_port: int,
) -> None:
    cli = cli_for(sqlite_url)
    line = one_error_line(cli("serve", "--port", str(busy_port)))
    assert (
        line == f"error: cannot listen on 127.0.0.1:{busy_port}: Address already in use"
    )
    assert uvicorn_calls == []
    assert unmigrated(cli) and not (cli.keys_dir / MANIFEST).exists()


def test_serve_on_an_address_of_another_host(
    cli_for: Callable[..., Cli],
    sqlite_url: str,
    uvicorn_calls: list[dict[str, Any]],
    free_port: int,
) -> None:
    cli = cli_for(sqlite_url)
    result = cli(
        "serve", "--host", "203.0.113.9", "--port", str(free_port)
    )  # TEST-NET-3
    assert "error: cannot listen on 203.0.113.9:" in one_error_line(result)
    assert uvicorn_calls == [] and unmigrated(cli)


def test_serve_without_auto_migrate_refuses_an_old_schema(
    cli_for: Callable[..., Cli],
    sqlite_url: str,
    uvicorn_calls: list[dict[str, Any]],
    free_port: int,
) -> None:
    cli = cli_for(sqlite_url, AUTH_AUTO_MIGRATE="false")
    line = one_error_line(cli("serve", "--port", str(free_port)))
    assert "run `authctl db upgrade`" in line
    assert uvicorn_calls == [] and unmigrated(cli)

    ok(cli("db", "upgrade"))  # the deploy step
    ok(cli("serve", "--port", str(free_port)))
    assert len(uvicorn_calls) == 1


def test_serve_warns_about_a_key_store_others_can_read(
    cli_for: Callable[..., Cli],
    sqlite_url: str,
    uvicorn_calls: list[dict[str, Any]],
    free_port: int,
) -> None:
    cli = cli_for(sqlite_url)
    ok(cli("db", "upgrade"))
    ok(cli("serve", "--port", str(free_port)))  # the first start makes the store
    cli.keys_dir.chmod(0o755)

    result = ok(cli("serve", "--port", str(free_port)))

    assert f"warning: key store {cli.keys_dir} is open to other users" in result.stderr
    assert len(uvicorn_calls) == 2  # a warning: existing deployments keep running


def test_the_first_start_makes_a_checkouts_keys_directory_private(
    cli_for: Callable[..., Cli],
    sqlite_url: str,
    uvicorn_calls: list[dict[str, Any]],
    free_port: int,
) -> None:
    # A fresh clone: keys/ exists, mode 0755, holding only its .gitkeep.
    cli = cli_for(sqlite_url)
    cli.keys_dir.mkdir(mode=0o755)
    cli.keys_dir.chmod(0o755)
    (cli.keys_dir / ".gitkeep").touch(mode=0o644)

    result = ok(cli("serve", "--port", str(free_port)))

    assert "warning" not in result.stderr
    assert stat.S_IMODE(cli.keys_dir.stat().st_mode) == 0o700
    assert len(uvicorn_calls) == 1
