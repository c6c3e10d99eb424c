"""How each backend stores a rotation: one interface, a store per backend.

Both mark the parent used and store its child atomically, and only while the
parent is the client's and live (crud.liveness.refresh_token_live): that
conditional UPDATE is the single-use guard, of two concurrent rotations
exactly one matches. PostgreSQL re-checks it after the first writer commits
and does UPDATE and INSERT in one statement (crud.rotation_batch); the
refresh grant first offers it to the process's batcher (db.rotation_batcher),
which shares one with concurrent requests' rotations on a connection of its
own, and comes here when there is none or it failed. SQLite runs writers one
at a time and, having no data-modifying CTEs, runs both in the session's
transaction.
"""

from typing import Protocol, cast

from sqlalchemy import Boolean, Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.crud.common import rowcount
from authserver.crud.liveness import refresh_token_live
from authserver.crud.rotation_batch import RotationRow, rotate_many
from authserver.db.session import dialect_name
from authserver.models import RefreshToken
from authserver.models.base import UTCDateTime

_TOKENS = cast(Table, RefreshToken.__table__)


class RefreshTokenStore(Protocol):
    async def rotate_alone(self, row: RotationRow) -> bool:
        """The rotation on this session; False, with nothing written, unless
        the parent may rotate. On PostgreSQL one atomic statement (the caller
        may run it in autocommit)."""


class PostgresRefreshTokenStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rotate_alone(self, row: RotationRow) -> bool:
        return row.child_jti in await rotate_many(self.session, [row])


_AT = bindparam("at", type_=UTCDateTime)
_CONSUME = (
    update(_TOKENS)
    .where(
        _TOKENS.c.jti == bindparam("parent_jti"),
        _TOKENS.c.client_id == bindparam("client_pk"),
        refresh_token_live(_AT, bindparam("admin_required", type_=Boolean)),
    )
    .values(
        rotated_at=_AT,
        replaced_by=bindparam("child_jti"),
        retry_scope=bindparam("retry_scope"),
        retry_until=bindparam("retry_until"),
    )
)
# Exactly its own parameters: an UPDATE would take one named like a column
# (family_id, scope, ...) as a new value for it.
_CONSUME_PARAMS = tuple(_CONSUME.compile().params)


class SqliteRefreshTokenStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rotate_alone(self, row: RotationRow) -> bool:
        consumed = await self.session.execute(
            _CONSUME, {name: getattr(row, name) for name in _CONSUME_PARAMS}
        )
        if rowcount(consumed) != 1:
            return False
        await self.session.execute(insert(_TOKENS).values(row.child_values()))
        return True


def refresh_token_store(session: AsyncSession) -> RefreshTokenStore:
    """The store of the session's backend."""
    if dialect_name(session) == "postgresql":
        return PostgresRefreshTokenStore(session)
    return SqliteRefreshTokenStore(session)
