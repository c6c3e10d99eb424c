"""authctl db, and the failures every database command shares."""

import asyncio
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from authserver.db import migrate
from authserver.db.session import SessionFactory
from tests.cli.conftest import Cli, skip_without_postgres
from tests.cli.helpers import failed, ok, one_error_line
from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database without any schema, per backend."""
    if request.param == "sqlite":
        (tmp_path / "empty.db").touch()  # an empty file is an empty database
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    skip_without_postgres()
    url = asyncio.run(create_pg_database())
    yield url
    asyncio.run(drop_pg_database(url))


def status(cli: Cli) -> dict[str, object]:
    result: dict[str, object] = json.loads(ok(cli("db", "current", "--json")).stdout)
    return result


def test_upgrade_current_history_downgrade(
    cli_for: Callable[..., Cli], empty_url: str
) -> None:
    cli = cli_for(empty_url)
    head = migrate.head_revision()
    assert status(cli) == {"current": None, "head": head, "at_head": False}
    unmigrated = cli("db", "current", "--check")
    failed(unmigrated)
    assert "run `authctl db upgrade`" in unmigrated.stdout

    assert f"at revision {head} (head)" in ok(cli("db", "upgrade")).stdout
    assert status(cli)["at_head"] is True
    assert ok(cli("db", "current", "--check")).stdout.strip() == f"{head} (head)"
    ok(cli("db", "upgrade"))  # nothing pending: still fine

    history = json.loads(ok(cli("db", "history", "--json")).stdout)
    assert history[0]["revision"] == head and history[0]["head"] is True
    assert history[-1]["down_revision"] is None
    assert head in ok(cli("db", "history")).stdout

    failed(cli("db", "downgrade", "base", input="n\n"))
    assert status(cli)["at_head"] is True
    assert "none" in ok(cli("db", "downgrade", "base", "--yes")).stdout
    assert status(cli)["current"] is None


READ_ONLY = {
    "user-list": ["user", "list"],
    "user-show": ["user", "show", "alice"],
    "client-list": ["client", "list", "--json"],
    "audit-list": ["audit", "list"],
    "db-current": ["db", "current"],
    "db-downgrade": ["db", "downgrade", "base", "--yes"],
}


@pytest.mark.parametrize("args", list(READ_ONLY.values()), ids=list(READ_ONLY))
def test_a_command_that_reads_creates_no_database_file(
    cli_for: Callable[..., Cli], tmp_path: Path, args: list[str]
) -> None:
    missing = tmp_path / "typo.db"
    cli = cli_for(f"sqlite+aiosqlite:///{missing}")

    line = one_error_line(cli(*args))

    assert line == (
        f"error: no database at {missing} (AUTH_DATABASE_URL): "
        "`authctl db upgrade` or `authctl serve` creates it"
    )
    assert not missing.exists()
    ok(cli("db", "upgrade"))  # the one command that may create it
    assert missing.exists()


def test_upgrade_to_unknown_revision(
    cli_for: Callable[..., Cli], sqlite_url: str
) -> None:
    cli = cli_for(sqlite_url)
    assert "nope" in one_error_line(cli("db", "upgrade", "nope"))


def test_downgrade_needs_a_revision(
    cli_for: Callable[..., Cli], sqlite_url: str
) -> None:
    assert "Missing argument" in failed(cli_for(sqlite_url)("db", "downgrade"), code=2)


def test_downgrade_to_an_unknown_revision_fails_before_asking(
    cli_for: Callable[..., Cli], sqlite_url: str
) -> None:
    cli = cli_for(sqlite_url)
    ok(cli("db", "upgrade"))
    before = status(cli)["current"]

    result = cli("db", "downgrade", "nope")  # no --yes: it must not even ask

    line = one_error_line(result)
    assert line.startswith("error: ") and "nope" in line
    assert status(cli)["current"] == before


def test_downgrade_by_a_relative_step(
    cli_for: Callable[..., Cli], sqlite_url: str
) -> None:
    cli = cli_for(sqlite_url)
    history = json.loads(ok(cli("db", "history", "--json")).stdout)
    revisions = [item["revision"] for item in history] + [None]  # newest first
    ok(cli("db", "upgrade"))

    failed(cli("db", "downgrade", "-1", input="n\n"))
    assert status(cli)["current"] == revisions[0]
    # As README and --help write it: -1 is the revision, not an option.
    result = ok(cli("db", "downgrade", "-1", "--yes"))
    assert f"at revision {revisions[1]}" in result.stdout
    ok(cli("db", "downgrade", "-y", "-1"))
    assert status(cli)["current"] == revisions[2]
    ok(cli("db", "upgrade"))
    ok(cli("db", "downgrade", "--yes", "--", "-2"))
    assert status(cli)["current"] == revisions[2]
    assert "No such option: -x" in failed(cli("db", "downgrade", "-x"), code=2)


BAD_REVISIONS = {
    "upgrade-empty": ["upgrade", ""],
    "upgrade-blank": ["upgrade", " "],
    "upgrade-past-head": ["upgrade", "head+1"],
    "upgrade-at-sign": ["upgrade", "@"],
    "upgrade-before-base": ["upgrade", "head-99"],
    "downgrade-empty": ["downgrade", "--yes", ""],
    "downgrade-at-sign": ["downgrade", "--yes", "@"],
    "downgrade-branch-only": ["downgrade", "--yes", "head@"],
    "downgrade-too-far": ["downgrade", "--yes", "-99"],
}


@pytest.mark.parametrize("args", list(BAD_REVISIONS.values()), ids=list(BAD_REVISIONS))
def test_bad_revision(
    cli_for: Callable[..., Cli], sqlite_url: str, args: list[str]
) -> None:
    cli = cli_for(sqlite_url)
    ok(cli("db", "upgrade"))
    one_error_line(cli("db", *args))
    assert status(cli)["at_head"] is True


SCHEMA_COMMANDS = {
    "user-list": ["user", "list"],
    "user-show": ["user", "show", "alice"],
    "client-list": ["client", "list", "--json"],
    "client-rotate": ["client", "rotate-secret", "app"],
}


@pytest.mark.parametrize(
    "args", list(SCHEMA_COMMANDS.values()), ids=list(SCHEMA_COMMANDS)
)
def test_commands_refuse_an_unmigrated_database(
    cli_for: Callable[..., Cli], empty_url: str, args: list[str]
) -> None:
    line = one_error_line(cli_for(empty_url)(*args))
    assert "revision none" in line and "run `authctl db upgrade`" in line


def test_commands_refuse_a_newer_schema(cli: Cli) -> None:
    async def stamp(factory: SessionFactory) -> None:
        async with factory() as session:
            await session.execute(text("UPDATE alembic_version SET version_num='9999'"))
            await session.commit()

    cli.seed(stamp)
    try:
        assert "does not know" in one_error_line(cli("user", "list"))
    finally:
        cli.seed(lambda f: _restamp(f, migrate.head_revision() or ""))


async def _restamp(factory: SessionFactory, revision: str) -> None:
    async with factory() as session:
        await session.execute(
            text("UPDATE alembic_version SET version_num=:r"), {"r": revision}
        )
        await session.commit()


UNREACHABLE = {
    "sqlite-missing-dir": (
        "sqlite+aiosqlite:////nonexistent-dir/authctl.db",
        "directory /nonexistent-dir does not exist",
    ),
    "postgres-refused": (
        "postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/authserver",
        "cannot reach the database postgresql+asyncpg://postgres:***@127.0.0.1:1",
    ),
}


@pytest.mark.parametrize(
    ("url", "message"), list(UNREACHABLE.values()), ids=list(UNREACHABLE)
)
@pytest.mark.parametrize(
    "args", [["user", "list"], ["db", "current"], ["db", "upgrade"]], ids=" ".join
)
def test_unreachable_database(
    cli_for: Callable[..., Cli], url: str, message: str, args: list[str]
) -> None:
    result = cli_for(url)(*args)
    assert message in one_error_line(result)
    assert "hunter2" not in result.output


MALFORMED_URLS = {
    "port-not-a-number": "postgresql+asyncpg://postgres:hunter2@127.0.0.1:notaport/x",
    "unclosed-ipv6": "postgresql+asyncpg://postgres:hunter2@[::1:5432/x",
    "port-out-of-range": "postgresql+asyncpg://postgres:hunter2@127.0.0.1:99999/x",
    "at-in-password": "postgresql+asyncpg://postgres:hun@ter2@127.0.0.1:5432x/x",
    "libpq-parameter": "postgresql+asyncpg://postgres:hunter2@127.0.0.1/x?sslmode=on",
    "sqlite-port": "sqlite+aiosqlite://host:port/x.db",
}


@pytest.mark.parametrize("url", list(MALFORMED_URLS.values()), ids=list(MALFORMED_URLS))
@pytest.mark.parametrize(
    "args", [["user", "list"], ["db", "current"], ["db", "upgrade"]], ids=" ".join
)
def test_malformed_database_url(
    cli_for: Callable[..., Cli], url: str, args: list[str]
) -> None:
    result = cli_for(url)(*args)
    # Settings refuse a bad host or port; the driver's objections (a libpq
    # parameter asyncpg does not take) come at the first connection.
    assert one_error_line(result).startswith("error: invalid setting AUTH_DATABASE_URL")
    assert "hunter2" not in result.output and "ter2" not in result.output


BAD_SETTINGS = {
    "bcrypt-rounds": ({"AUTH_BCRYPT_ROUNDS": "2"}, "AUTH_BCRYPT_ROUNDS"),
    "database-url": ({"AUTH_DATABASE_URL": "mysql://db/auth"}, "AUTH_DATABASE_URL"),
    "issuer": ({"AUTH_ISSUER": "http://example.com"}, "AUTH_ISSUER"),
}


@pytest.mark.parametrize(
    ("env", "name"), list(BAD_SETTINGS.values()), ids=list(BAD_SETTINGS)
)
def test_invalid_settings(
    cli_for: Callable[..., Cli], sqlite_url: str, env: dict[str, str], name: str
) -> None:
    line = one_error_line(cli_for(sqlite_url, **env)("user", "list"))
    assert line.startswith(f"error: invalid setting {name}")


def test_a_new_sqlite_database_is_private(
    cli_for: Callable[..., Cli], tmp_path: Path
) -> None:
    path = tmp_path / "new.db"
    cli = cli_for(f"sqlite+aiosqlite:///{path}")
    previous = os.umask(0o022)  # the usual umask: SQLite would make it 0644
    try:
        ok(cli("db", "upgrade"))
    finally:
        os.umask(previous)

    for file in tmp_path.glob("new.db*"):  # -wal and -shm too, if still there
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    assert path.exists()
