"""Engine and session factories shared by the API, the CLI and the tests."""

import asyncio
import os
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from authserver.core.config import Settings

SessionFactory = async_sessionmaker[AsyncSession]
AUTOCOMMIT = "AUTOCOMMIT"


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        _create_private(make_url(settings.database_url).database)
        engine = create_async_engine(
            settings.database_url, connect_args={"timeout": 30}, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        # Overflow connections are closed on return: sized so that steady load
        # runs on pooled ones (reconnecting costs more than a whole request).
        max_overflow=settings.db_pool_size // 2,
        pool_pre_ping=False,
        # The most recently used connection first: under load the same few
        # server processes stay busy and warm instead of all of them taking
        # turns, which keeps their caches warm (figures in docs/benchmarks.md).
        pool_use_lifo=True,
        pool_timeout=10,
        # Bound values (hashes, token ids) stay out of exception text and logs.
        hide_parameters=True,
        # A statement that hangs (a dead server, a lock) must not hang requests.
        connect_args={"timeout": 5, "command_timeout": 15},
    )


def _create_private(database: str | None) -> None:
    """Create a new SQLite file 0600 before SQLite does (0644 under the usual
    umask): it holds password and token hashes. SQLite gives its -wal and -shm
    files the database file's mode, so they follow."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a missing directory and the like: SQLite's own error says it
    os.close(fd)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so every transaction can
        # start with BEGIN IMMEDIATE (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # SQLite has one writer. A deferred transaction that reads and then
        # writes fails with SQLITE_BUSY (no waiting) when another writer got in
        # between; taking the write lock up front makes it wait its turn, which
        # is what the single-use refresh-token update relies on.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(factory: SessionFactory, timeout: float) -> None:
    """Run `SELECT 1` within `timeout` seconds; raises TimeoutError or the DB error."""
    async with asyncio.timeout(timeout):
        async with factory() as session:
            await session.execute(text("SELECT 1"))


def dialect_name(session: AsyncSession) -> str:
    """ "postgresql" or "sqlite": for the few statements written per backend."""
    bind = session.bind
    assert bind is not None, "sessions come from a factory bound to the engine"
    return bind.dialect.name
