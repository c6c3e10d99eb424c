"""Group commit for refresh-token rotations on PostgreSQL.

Every refresh marks its parent token used and stores the child (see
`RefreshTokenRepository.rotate_into`). Done one statement per request, the
database's fixed cost per statement and per commit (parse, plan, WAL flush,
a round trip, SQLAlchemy's and asyncpg's own work) was the largest part of a
refresh after its signature (docs/benchmarks.md). `RotationBatcher` writes the rotations that arrive while earlier
ones are in flight as ONE statement: the arrays of all their rows go through
`unnest`, the conditional UPDATE consumes every parent that may still rotate,
and the INSERT stores exactly the children of the parents it consumed. The
statement is atomic on its own (no transaction round trips) and says which
rotations won by returning their children's ids.

No request waits for a batch to fill: a rotation that finds no statement in
flight goes out at once (on the event loop's next turn, with whatever else
arrived in that turn), so a quiet server adds no latency; batches grow only
while the database is busy. Single use is the UPDATE's, as before: of two
rotations of one parent in one batch, PostgreSQL updates the row once and
returns one of them; across batches (or workers) the second finds it used.

If a batch fails as a whole, nobody is handed a batch-mate's error: each
rotation of it is retried alone on its request's own session, where its own
outcome (an outage's 503, a committed rotation found used and answered from the
retry window) is its own.
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    Boolean,
    LargeBinary,
    String,
    Table,
    Uuid,
    bindparam,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy import column, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from authserver.core.metrics import REFRESH_ROTATION_BATCH_SIZE
from authserver.crud.liveness import refresh_token_live
from authserver.models import RefreshToken
from authserver.models.base import UTCDateTime

logger = logging.getLogger(__name__)

_TOKENS = cast(Table, RefreshToken.__table__)

# The most rotations one statement carries; more wait for the next statement.
MAX_BATCH = 128
# Statements in flight at once per process: a second one keeps one slow
# statement (a lock wait) from holding up every refresh of the process.
MAX_IN_FLIGHT = 2


@dataclass(frozen=True, slots=True)
class RotationRow:
    """One rotation: the parent to consume and the child to store."""

    parent_jti: str
    client_pk: uuid.UUID
    admin_required: bool  # the child carries `admin`: its owner must still be one
    at: datetime
    retry_blob: bytes | None
    retry_until: datetime | None
    child_jti: str
    family_id: uuid.UUID
    user_id: uuid.UUID
    scope: str
    auth_time: datetime
    expires_at: datetime

    @classmethod
    def of(
        cls,
        parent_jti: str,
        child: RefreshToken,
        *,
        at: datetime,
        admin_required: bool,
        retry_blob: bytes | None,
        retry_until: datetime | None,
    ) -> "RotationRow":
        """The rotation of `parent_jti` into `child` (a record not yet stored)."""
        return cls(
            parent_jti=parent_jti,
            client_pk=child.client_id,
            admin_required=admin_required,
            at=at,
            retry_blob=retry_blob,
            retry_until=retry_until,
            child_jti=child.jti,
            family_id=child.family_id,
            user_id=child.user_id,
            scope=child.scope,
            auth_time=child.auth_time,
            expires_at=child.expires_at,
        )

    def child_values(self) -> dict[str, Any]:
        """The child's columns; the rotation and revocation ones start NULL."""
        return {column: getattr(self, field) for column, field in _CHILD.items()}


# The child's column -> the RotationRow field that holds its value.
_CHILD = {
    "jti": "child_jti",
    "family_id": "family_id",
    "user_id": "user_id",
    "client_id": "client_pk",
    "scope": "scope",
    "auth_time": "auth_time",
    "issued_at": "at",
    "expires_at": "expires_at",
}
_TYPES: dict[str, Any] = {
    "parent_jti": String,
    "client_pk": Uuid,
    "admin_required": Boolean,
    "at": UTCDateTime,
    "retry_blob": LargeBinary,
    "retry_until": UTCDateTime,
    "child_jti": String,
    "family_id": Uuid,
    "user_id": Uuid,
    "scope": String,
    "auth_time": UTCDateTime,
    "expires_at": UTCDateTime,
}
_NAMES = [f.name for f in fields(RotationRow)]
assert set(_NAMES) == set(_TYPES), "every RotationRow field needs its SQL type"


def _bind(name: str) -> str:
    # Not a column's name: an UPDATE would take such a parameter as a new value.
    return f"all_{name}"


# The rows, one array per field: `unnest(CAST(:all_parent_jti AS VARCHAR[]), ...)
# AS rotation(parent_jti, ...)`. One statement text for every batch size, so
# PostgreSQL and asyncpg prepare it once per connection.
_ROWS = (
    func.unnest(
        *[sql_cast(bindparam(_bind(name)), ARRAY(_TYPES[name])) for name in _NAMES]
    )
    .table_valued(*[column(name, _TYPES[name]) for name in _NAMES])
    .render_derived(name="rotation")
)


_CONSUMED = (
    update(_TOKENS)
    .where(
        _TOKENS.c.jti == _ROWS.c.parent_jti,
        _TOKENS.c.client_id == _ROWS.c.client_pk,
        refresh_token_live(_ROWS.c.at, _ROWS.c.admin_required),
    )
    .values(
        rotated_at=_ROWS.c.at,
        replaced_by=_ROWS.c.child_jti,
        retry_blob=_ROWS.c.retry_blob,
        retry_until=_ROWS.c.retry_until,
    )
    .returning(*_ROWS.c)
    .cte("consumed")
)
_CHILD_VALUES = {column: _CONSUMED.c[field] for column, field in _CHILD.items()}
_STORED = (
    insert(_TOKENS)
    .from_select(list(_CHILD_VALUES), select(*_CHILD_VALUES.values()))
    .cte("stored")
)
ROTATE_MANY = select(_CONSUMED.c.child_jti).add_cte(_STORED)


async def rotate_many(
    connection: AsyncConnection | AsyncSession, rows: list[RotationRow]
) -> set[str]:
    """Run the rotations as one statement (PostgreSQL); the children that won."""
    # Parents in one order in every statement, so that two statements holding
    # the same parents (replays racing in two workers) lock them in the same
    # order and never deadlock.
    ordered = sorted(rows, key=attrgetter("parent_jti"))
    params = {_bind(name): [getattr(row, name) for row in ordered] for name in _NAMES}
    result = await connection.execute(ROTATE_MANY, params)
    return set(result.scalars())


class RotationBatcher:
    """Writes the rotations of one process in as few statements as it can."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._waiting: list[tuple[RotationRow, asyncio.Future[bool | None]]] = []
        self._flushers: set[asyncio.Task[None]] = set()  # referenced while running
        self._in_flight = 0  # counted by hand: a finished task leaves the set late

    async def rotate(self, row: RotationRow) -> bool | None:
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
            outcome: set[str] | None = None
            try:
                async with self._engine.connect() as connection:
                    autocommit = await connection.execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                    outcome = await rotate_many(autocommit, [row for row, _ in batch])
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
                        won = None if outcome is None else row.child_jti in outcome
                        future.set_result(won)
