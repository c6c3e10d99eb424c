"""The database circuit breaker on real (SQLite) engines: what counts, open, recover."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from authserver.core.exceptions import DatabaseUnavailableError
from authserver.db.breaker import (
    DatabaseBreaker,
    install_breaker,
    is_connection_failure,
)

RECOVERY = 0.3

COUNTED = {
    "refused": ConnectionRefusedError(111, "refused"),
    "reset": ConnectionResetError(104, "reset"),
    "os-error": OSError("network unreachable"),
    "timeout": TimeoutError(),
    "pool-timeout": PoolTimeoutError("QueuePool limit reached"),
    "interface-error": InterfaceError("SELECT 1", {}, Exception("closed")),
    "invalidated": DBAPIError(
        "SELECT 1", {}, Exception("gone"), connection_invalidated=True
    ),
}
NOT_COUNTED = {
    "integrity": IntegrityError("INSERT", {}, Exception("duplicate key")),
    "operational-alone": OperationalError("SELECT", {}, Exception("no such table")),
    "value-error": ValueError("bad input"),
    "cancelled": asyncio.CancelledError(),
}


@pytest.mark.parametrize("exc", list(COUNTED.values()), ids=list(COUNTED))
def test_connection_failures(exc):
    assert is_connection_failure(exc)


@pytest.mark.parametrize("exc", list(NOT_COUNTED.values()), ids=list(NOT_COUNTED))
def test_answers_and_bad_input_are_not_connection_failures(exc):
    assert not is_connection_failure(exc)


@pytest.fixture
async def unreachable(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, Path]]:
    """An engine on a SQLite file whose directory does not exist (yet)."""
    directory = tmp_path / "not-yet"
    engine = create_async_engine(f"sqlite+aiosqlite:///{directory}/db.sqlite")
    yield engine, directory
    await engine.dispose()


async def select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def test_failures_open_then_half_open_then_close(unreachable):
    engine, directory = unreachable
    breaker = DatabaseBreaker(failure_threshold=2, recovery_timeout=RECOVERY)
    install_breaker(engine, breaker)

    for _ in range(2):
        with pytest.raises(DatabaseUnavailableError, match="connection failed"):
            await select_one(engine)
    assert breaker.state == "open"

    with pytest.raises(DatabaseUnavailableError, match="breaker open") as refused:
        await select_one(engine)
    assert refused.value.retry_after >= 1
    assert refused.value.status_code == 503

    directory.mkdir()  # the database is back
    await asyncio.sleep(RECOVERY + 0.05)
    assert breaker.state == "half_open"
    await select_one(engine)
    assert breaker.state == "closed"
    assert breaker.failure_count == 0


async def test_a_failure_while_half_open_opens_again(unreachable):
    engine, _ = unreachable
    breaker = DatabaseBreaker(failure_threshold=2, recovery_timeout=RECOVERY)
    install_breaker(engine, breaker)
    for _ in range(2):
        with pytest.raises(DatabaseUnavailableError):
            await select_one(engine)

    await asyncio.sleep(RECOVERY + 0.05)
    with pytest.raises(DatabaseUnavailableError, match="connection failed"):
        await select_one(engine)

    assert breaker.state == "open"


async def test_success_resets_the_count(unreachable):
    engine, directory = unreachable
    breaker = DatabaseBreaker(failure_threshold=3, recovery_timeout=30)
    install_breaker(engine, breaker)
    with pytest.raises(DatabaseUnavailableError):
        await select_one(engine)
    assert breaker.failure_count == 1

    directory.mkdir()
    await select_one(engine)

    assert breaker.failure_count == 0 and breaker.state == "closed"


async def test_database_answers_do_not_count(tmp_path):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    breaker = DatabaseBreaker(failure_threshold=1, recovery_timeout=30)
    install_breaker(engine, breaker)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(OperationalError, match="no such table"):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT * FROM missing"))
    finally:
        await engine.dispose()

    assert breaker.state == "closed"
    assert breaker.failure_count == 0


async def test_a_connection_dropping_mid_statement_counts_and_is_discarded(tmp_path):
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    breaker = DatabaseBreaker(failure_threshold=5, recovery_timeout=30)
    install_breaker(engine, breaker)
    drop = True

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _reset(*_args: object) -> None:
        if drop:
            # What asyncpg raises, unwrapped, when the server's socket goes away.
            raise ConnectionResetError(104, "Connection reset by peer")

    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await select_one(engine)
        drop = False
        await select_one(engine)  # on a fresh connection
    finally:
        await engine.dispose()

    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert breaker.state == "closed"


def test_record_failure_feeds_the_library_state_machine():
    breaker = DatabaseBreaker(failure_threshold=2, recovery_timeout=30)

    breaker.record_failure(ConnectionRefusedError())
    assert breaker.state == "closed"
    breaker.record_failure(ConnectionRefusedError())

    assert breaker.state == "open"
    assert 1 <= breaker.retry_after() <= 30
    with pytest.raises(DatabaseUnavailableError):
        breaker.check()
    breaker.record_success()
    assert breaker.state == "closed"
