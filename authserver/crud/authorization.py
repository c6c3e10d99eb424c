"""Pending authorization requests and authorization codes."""

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.crud.common import rowcount
from authserver.models import AuthorizationCode, AuthorizationRequest


class AuthorizationRequestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, request_id: str) -> AuthorizationRequest | None:
        return await self.session.get(AuthorizationRequest, request_id)

    async def add(self, request: AuthorizationRequest) -> None:
        self.session.add(request)
        await self.session.flush()

    async def consume(self, request_id: str) -> bool:
        """Delete a finished request; False if another request finished it first
        (a double-submitted form), so each pending request completes once."""
        stmt = (
            delete(AuthorizationRequest)
            .where(AuthorizationRequest.id == request_id)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt)) == 1

    async def purge(self, *, now: datetime) -> int:
        """Drop requests nobody finished in time; return how many."""
        stmt = delete(AuthorizationRequest).where(AuthorizationRequest.expires_at < now)
        return rowcount(await self.session.execute(stmt))


class AuthorizationCodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, code: AuthorizationCode) -> None:
        self.session.add(code)
        await self.session.flush()

    async def get_by_hash(self, code_hash: str) -> AuthorizationCode | None:
        stmt = select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash)
        return await self.session.scalar(stmt)

    async def consume(self, code: AuthorizationCode, *, at: datetime) -> bool:
        """Mark the code used; False if it already was (the single-use guard:
        of two concurrent redemptions exactly one UPDATE matches)."""
        stmt = (
            update(AuthorizationCode)
            .where(
                AuthorizationCode.code_hash == code.code_hash,
                AuthorizationCode.consumed_at.is_(None),
            )
            .values(consumed_at=at)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt)) == 1

    async def purge(self, *, now: datetime) -> int:
        """Drop expired codes (a replay of one is refused as unknown anyway)."""
        stmt = delete(AuthorizationCode).where(AuthorizationCode.expires_at < now)
        return rowcount(await self.session.execute(stmt))
