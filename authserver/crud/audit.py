"""Audit event repository."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.models.audit import AuditEvent


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: AuditEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def list(
        self,
        *,
        subject: str | None = None,
        since: datetime | None = None,
        event: str | None = None,
        limit: int = 100,
    ) -> Sequence[AuditEvent]:
        """Newest first, optionally for one subject, since a moment, of one kind."""
        stmt = select(AuditEvent)
        if subject is not None:
            stmt = stmt.where(AuditEvent.subject == subject)
        if since is not None:
            stmt = stmt.where(AuditEvent.at >= since)
        if event is not None:
            stmt = stmt.where(AuditEvent.event == event)
        stmt = stmt.order_by(AuditEvent.id.desc()).limit(limit)
        return (await self.session.scalars(stmt)).all()
