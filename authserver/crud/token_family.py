"""Token families (see models.token_family)."""

import uuid
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from authserver.crud.common import rowcount
from authserver.crud.liveness import family_live, user_live
from authserver.models import TokenFamily, User
from authserver.models.base import UTCDateTime


class TokenFamilyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, family_id: uuid.UUID) -> TokenFamily | None:
        return await self.session.get(TokenFamily, family_id)

    async def live_user(
        self, family_id: uuid.UUID, user_id: uuid.UUID, *, at: datetime
    ) -> User | None:
        """The user, when they may use their tokens and this family of theirs
        is live at `at` (what an access token's `sub` and `sid` must meet)."""
        users = cast(Table, User.__table__)
        at_value = literal(at, UTCDateTime)
        stmt = select(User).where(
            users.c.id == user_id,
            user_live(),
            family_live(literal(family_id), at_value, user_id=users.c.id),
        )
        return await self.session.scalar(stmt)

    async def add(self, family: TokenFamily) -> None:
        """Insert a new family with one statement (the row is never read back)."""
        values = {c.key: getattr(family, c.key) for c in TokenFamily.__table__.c}
        await self.session.execute(insert(TokenFamily).values(**values))

    async def revoke(self, family_id: uuid.UUID, *, at: datetime) -> bool:
        """Mark the family revoked; False when it already was (or is gone)."""
        stmt = (
            update(TokenFamily)
            .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt)) == 1

    async def revoke_for_user(self, user_id: uuid.UUID, *, at: datetime) -> int:
        """Mark every live family of the user revoked; return how many."""
        stmt = (
            update(TokenFamily)
            .where(TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt))

    async def revoke_for_session(
        self, session_id: uuid.UUID, *, at: datetime
    ) -> list[uuid.UUID]:
        """Mark the live families a login session's code exchanges made
        revoked; return their ids."""
        return await self._revoke_where(TokenFamily.session_id == session_id, at=at)

    async def revoke_browser_sign_ins(
        self, user_id: uuid.UUID, *, at: datetime
    ) -> list[uuid.UUID]:
        """Mark every live family of the user that a login session made
        revoked (their password-grant families stay); return their ids."""
        return await self._revoke_where(
            TokenFamily.user_id == user_id, TokenFamily.session_id.is_not(None), at=at
        )

    async def _revoke_where(
        self, *conditions: ColumnElement[bool], at: datetime
    ) -> list[uuid.UUID]:
        stmt = (
            update(TokenFamily)
            .where(*conditions, TokenFamily.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(TokenFamily.id)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.scalars(stmt)).all())

    async def purge(self, *, now: datetime, keep_expired_for: timedelta) -> int:
        """Forget families past their lifetime long ago; return rows deleted."""
        result = await self.session.execute(
            delete(TokenFamily)
            .where(TokenFamily.expires_at < now - keep_expired_for)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result)
