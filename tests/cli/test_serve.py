"""authctl serve: prepares the database and the key store, then hands over to uvicorn."""

from collections.abc import Callable
from typing import Any

import pytest

from authserver.db import migrate
from authserver.services.keystore import MANIFEST
from tests.cli.conftest import Cli
from tests.cli.helpers import failed, ok, one_error_line


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """uvicorn.run replaced by a recorder: the test must not start a server."""
    calls: list[dict[str, Any]] = []

    def record(app: str, **options: Any) -> None:
        calls.append({"app": app, **options})

    monkeypatch.setattr("cli.serve.uvicorn.run", record)
    # The real call points the root logger at CliRunner's stdout, which is
    # closed after the test; later tests would log into a closed file.
    monkeypatch.setattr("cli.serve.configure_logging", lambda *a, **k: None)
    return calls


def test_serve_migrates_creates_the_first_key_and_runs_uvicorn(
    cli_for: Callable[..., Cli], sqlite_url: str, uvicorn_calls: list[dict[str, Any]]
) -> None:
    cli = cli_for(sqlite_url)
    result = ok(cli("serve", "--host", "0.0.0.0", "--port", "8123", "--workers", "2"))
    assert "on http://0.0.0.0:8123" in result.stdout
    [call] = uvicorn_calls
    assert call["app"] == "authserver.main:app"  # an import string: workers need it
    assert (call["host"], call["port"], call["workers"]) == ("0.0.0.0", 8123, 2)
    assert call["reload"] is False
    assert (cli.keys_dir / MANIFEST).is_file()
    status = ok(cli("db", "current", "--json")).stdout
    assert f'"current": "{migrate.head_revision()}"' in status


def test_serve_reload(
    cli_for: Callable[..., Cli], sqlite_url: str, uvicorn_calls: list[dict[str, Any]]
) -> None:
    ok(cli_for(sqlite_url)("serve", "--reload"))
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
    cli_for: Callable[..., Cli], uvicorn_calls: list[dict[str, Any]]
) -> None:
    cli = cli_for("postgresql+asyncpg://postgres@127.0.0.1:1/authserver")
    assert "cannot reach the database" in one_error_line(cli("serve"))
    assert uvicorn_calls == []


def test_serve_with_unusable_key_store(
    cli_for: Callable[..., Cli], sqlite_url: str, uvicorn_calls: list[dict[str, Any]]
) -> None:
    cli = cli_for(sqlite_url)
    cli.keys_dir.parent.mkdir(parents=True, exist_ok=True)
    cli.keys_dir.write_text("a file where the key directory should be")
    assert "key store" in one_error_line(cli("serve"))
    assert uvicorn_calls == []
