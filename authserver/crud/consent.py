"""Remembered consents: which scopes a user let a third-party client have."""

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from authserver.crud.common import rowcount
from authserver.models import Client, Consent, User


class ConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_user_and_client(
        self, user_id: uuid.UUID, client_id: uuid.UUID
    ) -> Consent | None:
        stmt = select(Consent).where(
            Consent.user_id == user_id, Consent.client_id == client_id
        )
        return await self.session.scalar(stmt)

    async def add(self, consent: Consent) -> None:
        self.session.add(consent)
        await self.session.flush()

    async def list(
        self, *, user_id: uuid.UUID | None = None
    ) -> Sequence[tuple[Consent, str, str]]:
        """Consents with the username and client_id they name, oldest first."""
        user, client = aliased(User), aliased(Client)
        stmt = (
            select(Consent, user.username, client.client_id)
            .join(user, user.id == Consent.user_id)
            .join(client, client.id == Consent.client_id)
            .order_by(Consent.granted_at)
        )
        if user_id is not None:
            stmt = stmt.where(Consent.user_id == user_id)
        rows = (await self.session.execute(stmt)).all()
        return [(row[0], row[1], row[2]) for row in rows]

    async def delete(self, user_id: uuid.UUID, client_id: uuid.UUID | None) -> int:
        """Forget the user's consent to one client (or to every client)."""
        stmt = delete(Consent).where(Consent.user_id == user_id)
        if client_id is not None:
            stmt = stmt.where(Consent.client_id == client_id)
        return rowcount(await self.session.execute(stmt))
