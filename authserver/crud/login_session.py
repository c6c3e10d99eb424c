"""Browser sign-in sessions."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.crud.common import rowcount
from authserver.models import LoginSession


class LoginSessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, session_id: uuid.UUID) -> LoginSession | None:
        return await self.session.get(LoginSession, session_id)

    async def get_by_token_hash(self, token_hash: str) -> LoginSession | None:
        stmt = select(LoginSession).where(LoginSession.token_hash == token_hash)
        return await self.session.scalar(stmt)

    async def hold(self, session_id: uuid.UUID) -> LoginSession | None:
        """The session's row, locked until the transaction ends, so that it
        cannot end meanwhile: FOR SHARE on PostgreSQL, which `end`'s UPDATE
        must wait for but another holder need not, so the code exchanges of
        one sign-in run side by side (with FOR UPDATE, 32 at once took turns:
        54 exchanges/s on 2 cores). On SQLite the write transactions take
        turns anyway."""
        stmt = (
            select(LoginSession)
            .where(LoginSession.id == session_id)
            .with_for_update(read=True)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(stmt)

    async def add(self, login: LoginSession) -> None:
        self.session.add(login)
        await self.session.flush()

    async def list(
        self, *, now: datetime, user_id: uuid.UUID | None = None
    ) -> Sequence[LoginSession]:
        """Live sessions, newest sign-in first."""
        stmt = select(LoginSession).where(
            LoginSession.ended_at.is_(None), LoginSession.expires_at > now
        )
        if user_id is not None:
            stmt = stmt.where(LoginSession.user_id == user_id)
        stmt = stmt.order_by(LoginSession.auth_time.desc())
        return (await self.session.scalars(stmt)).all()

    async def end(self, session_id: uuid.UUID, *, at: datetime) -> bool:
        stmt = (
            update(LoginSession)
            .where(LoginSession.id == session_id, LoginSession.ended_at.is_(None))
            .values(ended_at=at)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt)) == 1

    async def end_for_user(self, user_id: uuid.UUID, *, at: datetime) -> int:
        stmt = (
            update(LoginSession)
            .where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
            .values(ended_at=at)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt))

    async def purge(self, *, now: datetime) -> int:
        stmt = delete(LoginSession).where(LoginSession.expires_at < now)
        return rowcount(await self.session.execute(stmt))
