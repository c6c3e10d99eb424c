"""The access-token deny list (see models.revoked_token)."""

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.crud.common import rowcount
from authserver.models import RevokedToken


class RevokedTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, jti: str) -> RevokedToken | None:
        """The deny-list entry of this jti, or None."""
        stmt = select(RevokedToken).where(RevokedToken.jti == jti)
        return await self.session.scalar(stmt)

    async def any_of(self, keys: list[str]) -> bool:
        """Whether any of these keys (a jti, a refresh family id) is deny-listed."""
        stmt = select(RevokedToken.jti).where(RevokedToken.jti.in_(keys)).limit(1)
        return await self.session.scalar(stmt) is not None

    async def add(self, jti: str, *, expires_at: datetime, at: datetime) -> bool:
        """Deny-list a jti; False when it already was (concurrent revocations agree)."""
        values = {"jti": jti, "expires_at": expires_at, "revoked_at": at}
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = pg_insert(RevokedToken).values(values).on_conflict_do_nothing()
            result = await self.session.execute(stmt)
        else:
            lite = sqlite_insert(RevokedToken).values(values).on_conflict_do_nothing()
            result = await self.session.execute(lite)
        return rowcount(result) == 1

    async def purge(self, *, now: datetime, keep_expired_for: timedelta) -> int:
        """Forget entries whose tokens expired long ago; return rows deleted."""
        result = await self.session.execute(
            delete(RevokedToken)
            .where(RevokedToken.expires_at < now - keep_expired_for)
            .execution_options(synchronize_session=False)
        )
        return rowcount(result)
