"""Refresh-token records: single-use rotation and family revocation in SQL."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Table,
    bindparam,
    delete,
    exists,
    insert,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.crud.common import rowcount
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
# The token's owner may still use it: active, the password unchanged since the
# token was issued, and an admin if the token carries the admin scope.
_OWNER_ALLOWED = exists().where(
    _USERS.c.id == _TOKENS.c.user_id,
    _USERS.c.is_active.is_(True),
    _USERS.c.password_changed_at <= _TOKENS.c.issued_at,
    or_(_USERS.c.is_admin.is_(True), not_(bindparam("admin_required", type_=Boolean))),
)
_CONSUME = (
    update(_TOKENS)
    .where(
        _TOKENS.c.jti == bindparam("parent_jti"),
        _TOKENS.c.client_id == bindparam("client_pk"),
        _TOKENS.c.rotated_at.is_(None),
        _TOKENS.c.revoked_at.is_(None),
        _TOKENS.c.family_expires_at > bindparam("at"),
        _OWNER_ALLOWED,
    )
    .values(
        rotated_at=bindparam("at"),
        replaced_by=bindparam("child_jti"),
        retry_blob=bindparam("retry_blob"),
        retry_until=bindparam("retry_until"),
    )
)
# Columns a new record sets; the rotation and revocation ones start NULL.
_LATER_COLUMNS = {
    "rotated_at",
    "replaced_by",
    "revoked_at",
    "retry_blob",
    "retry_until",
}
_CHILD_COLUMNS = [c for c in _TOKENS.c if c.key not in _LATER_COLUMNS]
# PostgreSQL: consume the parent and insert its child in ONE statement. A
# data-modifying CTE is atomic on its own, needs no transaction round trips,
# and inserts nothing when the UPDATE matched no row (a concurrent rotation).
_CONSUME_AND_INSERT = insert(_TOKENS).from_select(
    [c.key for c in _CHILD_COLUMNS],
    select(
        *[
            bindparam("child_jti" if c.key == "jti" else f"child_{c.key}", type_=c.type)
            for c in _CHILD_COLUMNS
        ]
    ).select_from(_CONSUME.returning(_TOKENS.c.jti).cte("consumed")),
)


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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

    async def rotate_into(
        self,
        parent_jti: str,
        child: RefreshToken,
        *,
        client_pk: uuid.UUID,
        at: datetime,
        admin_required: bool,
        retry_blob: bytes | None,
        retry_until: datetime | None,
    ) -> bool:
        """Mark a live token used and store its child, atomically.

        False, with nothing written, unless the parent is the client's, unused,
        unrevoked, within its family's lifetime and its owner may still use it
        (active, password unchanged since, an admin when `admin_required`).
        The conditional UPDATE is the single-use guard: of two concurrent
        rotations exactly one matches (PostgreSQL re-checks the WHERE after
        the first commits; SQLite runs writers one at a time). PostgreSQL runs
        both in one statement; SQLite, which has no data-modifying CTEs, runs
        them in the session's transaction.
        """
        params: dict[str, Any] = {
            "parent_jti": parent_jti,
            "client_pk": client_pk,
            "admin_required": admin_required,
            "child_jti": child.jti,
            "at": at,
            "retry_blob": retry_blob,
            "retry_until": retry_until,
        }
        if dialect_name(self.session) == "postgresql":
            for column in _CHILD_COLUMNS:
                if column.key != "jti":
                    params[f"child_{column.key}"] = getattr(child, column.key)
            result = await self.session.execute(_CONSUME_AND_INSERT, params)
            return rowcount(result) == 1
        if rowcount(await self.session.execute(_CONSUME, params)) != 1:
            return False
        await self.add(child)
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
