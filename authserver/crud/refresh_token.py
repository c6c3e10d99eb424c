"""Refresh-token records: single-use rotation and family revocation in SQL."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    Boolean,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.crud.common import rowcount
from authserver.crud.rotation_batch import (
    RotationBatcher,
    RotationRow,
    owner_may_use,
    rotate_many,
)
from authserver.db.session import dialect_name
from authserver.models import RefreshToken, User

_TOKENS = cast(Table, RefreshToken.__table__)
_USERS = cast(Table, User.__table__)


@dataclass(frozen=True)
class TokenOwner:
    """What a refresh needs to know of the token's user (no password hash)."""

    id: uuid.UUID
    is_active: bool
    is_admin: bool
    password_changed_at: datetime


# The refresh grant's statements, built once: Core on the tables, not the ORM
# (one of them runs on every refresh; see docs/benchmarks.md).
_FIND_FOR_ROTATION = (
    select(
        _TOKENS,
        _USERS.c.is_active.label("owner_is_active"),
        _USERS.c.is_admin.label("owner_is_admin"),
        _USERS.c.password_changed_at.label("owner_password_changed_at"),
    )
    .join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
    .where(_TOKENS.c.jti == bindparam("jti"))
)
# SQLite: the conditional UPDATE alone; the child is inserted after it in the
# same transaction. (PostgreSQL does both in one statement: rotation_batch.)
_CONSUME = (
    update(_TOKENS)
    .where(
        _TOKENS.c.jti == bindparam("parent_jti"),
        _TOKENS.c.client_id == bindparam("client_pk"),
        _TOKENS.c.rotated_at.is_(None),
        _TOKENS.c.revoked_at.is_(None),
        _TOKENS.c.family_expires_at > bindparam("at"),
        owner_may_use(bindparam("admin_required", type_=Boolean)),
    )
    .values(
        rotated_at=bindparam("at"),
        replaced_by=bindparam("child_jti"),
        retry_blob=bindparam("retry_blob"),
        retry_until=bindparam("retry_until"),
    )
)
# Exactly its own parameters: an UPDATE would take one named like a column
# (family_id, scope, ...) as a new value for it.
_CONSUME_PARAMS = tuple(_CONSUME.compile().params)


class RefreshTokenRepository:
    def __init__(
        self, session: AsyncSession, batcher: RotationBatcher | None = None
    ) -> None:
        self.session = session
        # PostgreSQL only: rotations of concurrent requests share a statement.
        self.batcher = batcher

    async def get(self, jti: str) -> RefreshToken | None:
        return await self.session.get(RefreshToken, jti)

    async def add(self, record: RefreshToken) -> None:
        """Insert a new record with one statement (no unit-of-work bookkeeping:
        the row is written once and never changed through this object)."""
        values = {c.key: getattr(record, c.key) for c in RefreshToken.__table__.c}
        await self.session.execute(insert(RefreshToken).values(**values))

    async def find_for_rotation(
        self, jti: str
    ) -> tuple[RefreshToken, TokenOwner] | None:
        """The record (detached: not tracked by the session) and its owner."""
        row = (await self.session.execute(_FIND_FOR_ROTATION, {"jti": jti})).first()
        if row is None:
            return None
        values = row._mapping
        record = RefreshToken(**{c.key: values[c.key] for c in _TOKENS.c})
        owner = TokenOwner(
            id=record.user_id,
            is_active=values["owner_is_active"],
            is_admin=values["owner_is_admin"],
            password_changed_at=values["owner_password_changed_at"],
        )
        return record, owner

    async def rotate_batched(self, row: RotationRow) -> bool | None:
        """`rotate_into`, in a statement shared with the rotations of concurrent
        requests (PostgreSQL with a batcher: crud.rotation_batch); None when
        there is no batch to join or the batch failed: run `rotate_into`."""
        if self.batcher is None or dialect_name(self.session) != "postgresql":
            return None
        return await self.batcher.rotate(row)

    async def rotate_into(self, row: RotationRow) -> bool:
        """Mark a live token used and store its child, atomically.

        False, with nothing written, unless the parent is the client's, unused,
        unrevoked, within its family's lifetime and its owner may still use it
        (active, password unchanged since, an admin when `admin_required`).
        The conditional UPDATE is the single-use guard: of two concurrent
        rotations exactly one matches (PostgreSQL re-checks the WHERE after
        the first commits; SQLite runs writers one at a time). PostgreSQL runs
        both in one atomic statement (no transaction needed: the caller's
        unit of work may run it in autocommit); SQLite, which has no
        data-modifying CTEs, runs them in the session's transaction.
        """
        if dialect_name(self.session) == "postgresql":
            return row.child_jti in await rotate_many(self.session, [row])
        consumed = await self.session.execute(
            _CONSUME, {name: getattr(row, name) for name in _CONSUME_PARAMS}
        )
        if rowcount(consumed) != 1:
            return False
        await self.session.execute(insert(_TOKENS).values(row.child_values()))
        return True

    async def revoke_family(self, family_id: uuid.UUID, *, at: datetime) -> int:
        """Revoke every live token of a family in one statement (no lock-order races)."""
        stmt = (
            update(RefreshToken)
            .where(
                RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None)
            )
            .values(revoked_at=at, retry_blob=None, retry_until=None)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt))

    async def revoke_for_user(self, user_id: uuid.UUID, *, at: datetime) -> int:
        stmt = (
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at, retry_blob=None, retry_until=None)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt))

    async def purge(self, *, now: datetime, keep_expired_for: timedelta) -> int:
        """Drop closed retry answers and long-expired records; return rows deleted."""
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.retry_until < now)
            .values(retry_blob=None, retry_until=None)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(
            delete(RefreshToken)
            .where(RefreshToken.expires_at < now - keep_expired_for)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result)
