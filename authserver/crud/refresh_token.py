"""Refresh-token records: single-use rotation and family revocation in SQL."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.crud.common import rowcount
from authserver.models import RefreshToken, User


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

    async def get_with_user(self, jti: str) -> tuple[RefreshToken, User] | None:
        """The record and its user in one round trip (the refresh grant needs both)."""
        stmt = (
            select(RefreshToken, User)
            .join(User, User.id == RefreshToken.user_id)
            .where(RefreshToken.jti == jti)
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1])

    async def rotate(
        self,
        jti: str,
        *,
        child_jti: str,
        at: datetime,
        retry_blob: bytes | None,
        retry_until: datetime | None,
    ) -> bool:
        """Mark a live token used; False if it was already used or revoked.

        One conditional UPDATE: of two concurrent rotations exactly one matches
        (PostgreSQL re-checks the WHERE after the first commits; SQLite runs
        writers one at a time).
        """
        stmt = (
            update(RefreshToken)
            .where(
                RefreshToken.jti == jti,
                RefreshToken.rotated_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(
                rotated_at=at,
                replaced_by=child_jti,
                retry_blob=retry_blob,
                retry_until=retry_until,
            )
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return rowcount(result) == 1

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
