"""Group commit of refresh-token rotations: an asyncio scheduler (PostgreSQL).

Every refresh marks its parent token used and stores the child in one
statement (crud.rotation_batch). The database's fixed cost per statement and
per commit is a large part of a refresh, so the rotations that arrive while
earlier ones are in flight are written as ONE statement, which says which of
them won. Single use is that statement's, not this scheduler's: it only
decides which rows travel together.

No request waits for a batch to fill: a rotation that finds no statement in
flight goes out at once (on the event loop's next turn, with whatever else
arrived in that turn), so a quiet server adds no latency; batches grow only
while the database is busy.

If a batch fails as a whole, nobody is handed a batch-mate's error: each
rotation of it is retried alone on its request's own session, where its own
outcome (an outage's 503, a committed rotation found used and answered from the
retry window) is its own.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from authserver.core.metrics import REFRESH_ROTATION_BATCH_SIZE

logger = logging.getLogger(__name__)

RowT = TypeVar("RowT")
# Runs a batch as one atomic statement; returns the keys of the rows that won.
BatchRunner = Callable[[AsyncConnection, list[RowT]], Awaitable[Collection[str]]]

# The most rotations one statement carries; more wait for the next statement.
MAX_BATCH = 128
# Statements in flight at once per process: a second one keeps one slow
# statement (a lock wait) from holding up every refresh of the process.
MAX_IN_FLIGHT = 2


class RotationBatcher(Generic[RowT]):
    """Writes the rotations of one process in as few statements as it can."""

    def __init__(
        self,
        engine: AsyncEngine,
        run_batch: BatchRunner[RowT],
        key: Callable[[RowT], str],
        *,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._engine = engine
        self._run_batch = run_batch
        self._key = key
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._waiting: list[tuple[RowT, asyncio.Future[bool | None]]] = []
        self._flushers: set[asyncio.Task[None]] = set()  # referenced while running
        self._in_flight = 0  # counted by hand: a finished task leaves the set late

    async def rotate(self, row: RowT) -> bool | None:
        """True when the rotation was stored, False when the parent may not
        rotate; None when its batch failed and the caller must run it alone."""
        future: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._in_flight < self._max_in_flight:
            self._in_flight += 1
            task = asyncio.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await future

    async def aclose(self) -> None:
        """Wait for the statements in flight (at shutdown, before the engine goes)."""
        if self._flushers:
            await asyncio.gather(*self._flushers, return_exceptions=True)

    async def _flush(self) -> None:
        try:
            await self._flush_waiting()
        finally:
            # No await between the last look at the queue and this: a rotation
            # queued after it starts a flusher of its own.
            self._in_flight -= 1

    async def _flush_waiting(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            outcome: Collection[str] | None = None
            try:
                async with self._engine.connect() as connection:
                    autocommit = await connection.execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                    rows = [row for row, _ in batch]
                    outcome = await self._run_batch(autocommit, rows)
                REFRESH_ROTATION_BATCH_SIZE.observe(len(batch))
            except Exception as exc:  # each rotation is retried alone: see above
                logger.warning(
                    "refresh_rotation_batch_failed",
                    extra={"rotations": len(batch), "error": type(exc).__name__},
                )
            finally:
                # Also on cancellation (shutdown): the waiters then run alone.
                for row, future in batch:
                    if not future.done():  # its request may have been cancelled
                        won = None if outcome is None else self._key(row) in outcome
                        future.set_result(won)
