"""The rotation statement of PostgreSQL: many rotations in one statement.

The arrays of all the rows go through `unnest`; the conditional UPDATE consumes
every parent that may still rotate (crud.liveness), and the INSERT stores
exactly the children of the parents it consumed. The statement is atomic on
its own (no transaction round trips) and says which rotations won by returning
their children's ids. Of two rotations of one parent in one statement,
PostgreSQL updates the row once and returns one of them; across statements (or
workers) the second finds it used. db.rotation_batcher decides which rotations
share a statement.
"""

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    Boolean,
    String,
    Table,
    Uuid,
    bindparam,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy import column, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from authserver.crud.liveness import refresh_token_live
from authserver.db.rotation_batcher import RotationBatcher
from authserver.models import RefreshToken
from authserver.models.base import UTCDateTime

_TOKENS = cast(Table, RefreshToken.__table__)


@dataclass(frozen=True, slots=True)
class RotationRow:
    """One rotation: the parent to consume and the child to store."""

    parent_jti: str
    client_pk: uuid.UUID
    admin_required: bool  # the child carries `admin`: its owner must still be one
    at: datetime
    retry_scope: str | None  # the access token's scope, while it may be retried
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
        retry_scope: str | None,
        retry_until: datetime | None,
    ) -> "RotationRow":
        """The rotation of `parent_jti` into `child` (a record not yet stored)."""
        return cls(
            parent_jti=parent_jti,
            client_pk=child.client_id,
            admin_required=admin_required,
            at=at,
            retry_scope=retry_scope,
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
    "retry_scope": String,
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
        retry_scope=_ROWS.c.retry_scope,
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


def rotation_batcher(
    engine: AsyncEngine, **options: int
) -> RotationBatcher[RotationRow]:
    """The group commit of this process's rotations (PostgreSQL)."""
    return RotationBatcher(engine, rotate_many, attrgetter("child_jti"), **options)
