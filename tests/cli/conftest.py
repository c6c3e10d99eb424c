"""CLI fixtures: authctl pointed at a test database through AUTH_* variables.

Commands call asyncio.run(), which cannot run inside pytest-asyncio's loop, so
CLI tests are plain sync functions; their database checks (`cli.db`) run their
own asyncio.run() with a fresh engine. User and client commands run on SQLite
and PostgreSQL (`cli`); tests that need an empty or special database build one
with `cli_for`.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner, Result

from authserver.core.config import Settings, get_settings
from authserver.db import migrate
from authserver.db.session import (
    SessionFactory,
    create_engine,
    create_session_factory,
)
from authserver.models import Base
from cli.main import app
from tests.cli.helpers import cli_env
from tests.conftest import (
    REQUIRE_PG,
    create_pg_database,
    drop_pg_database,
    make_settings,
    postgres_available,
)

T = TypeVar("T")


@dataclass
class Cli:
    """Runs authctl in-process (CliRunner) and inspects its database."""

    database_url: str
    keys_dir: Path

    @property
    def settings(self) -> Settings:
        return make_settings(self.database_url, self.keys_dir)

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), input=input)

    def db(self, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `query` in a session of its own (committed if it commits)."""

        async def go(factory: SessionFactory) -> T:
            async with factory() as session:
                return await query(session)

        return self.seed(go)

    def seed(self, make: Callable[[SessionFactory], Awaitable[T]]) -> T:
        """Run a factory such as tests.factories.make_user on this database."""
        return asyncio.run(_with_factory(self.settings, make))


async def _with_factory(
    settings: Settings, make: Callable[[SessionFactory], Awaitable[T]]
) -> T:
    engine = create_engine(settings)
    try:
        return await make(create_session_factory(engine))
    finally:
        await engine.dispose()


@pytest.fixture
def cli_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Cli]]:
    """Point authctl (in this process) at a database: cli_for(url, **AUTH_vars)."""
    # No .env from the working directory, no AUTH_* from the developer's shell.
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AUTH_") and not name.startswith("AUTH_TEST_"):
            monkeypatch.delenv(name)

    def point(database_url: str, **overrides: str) -> Cli:
        env = {**cli_env(database_url, tmp_path / "keys"), **overrides}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return Cli(database_url, Path(env["AUTH_KEYS_DIR"]))

    yield point
    get_settings.cache_clear()  # the next test must not see this one's settings


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input is a terminal, so authctl may prompt for a password.

    CliRunner's stdin is a pipe; without this, password prompts refuse to run.
    """
    monkeypatch.setattr("cli.user.stdin_is_terminal", lambda: True)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new, empty (unmigrated) SQLite database."""
    return f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def migrated_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database at head, per backend, shared by the CLI tests (emptied after each)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('cli') / 'cli.db'}"
        asyncio.run(_upgrade(url, tmp_path_factory.mktemp("keys")))
        yield url
        return
    skip_without_postgres()
    url = asyncio.run(create_pg_database())
    try:
        asyncio.run(_upgrade(url, tmp_path_factory.mktemp("keys")))
        yield url
    finally:
        asyncio.run(drop_pg_database(url))


def skip_without_postgres() -> None:
    reason = asyncio.run(postgres_available())
    if reason is None:
        return
    if REQUIRE_PG:
        pytest.fail(f"{reason} (AUTH_TEST_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


async def _upgrade(url: str, keys_dir: Path) -> None:
    engine = create_engine(make_settings(url, keys_dir))
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def cli(migrated_url: str, cli_for: Callable[..., Cli]) -> Iterator[Cli]:
    """authctl on a migrated database (SQLite and PostgreSQL), empty per test."""
    runner = cli_for(migrated_url)
    yield runner
    runner.seed(_empty_tables)


async def _empty_tables(factory: SessionFactory) -> None:
    async with factory() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(delete(table))
        await session.commit()
