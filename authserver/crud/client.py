"""Client repository."""

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.core.exceptions import AlreadyExistsError
from authserver.models import Client
from authserver.schemas.client import ClientCreate


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, id_: uuid.UUID) -> Client | None:
        return await self.session.get(Client, id_)

    async def get_by_client_id(
        self, client_id: str, *, for_update: bool = False
    ) -> Client | None:
        """The client; `for_update` locks its row until the transaction ends
        (PostgreSQL; SQLite's transactions already hold the one write lock)."""
        stmt = select(Client).where(Client.client_id == client_id)
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def list(self) -> Sequence[Client]:
        return (
            await self.session.scalars(select(Client).order_by(Client.client_id))
        ).all()

    async def add(self, data: ClientCreate, *, secret_hash: str | None) -> Client:
        """Insert a client; AlreadyExistsError if the client_id is taken."""
        client = Client(**data.model_dump(), secret_hash=secret_hash)
        self.session.add(client)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            # The transaction is unusable now: the unit of work ends it.
            raise AlreadyExistsError(f"client {data.client_id!r} exists") from exc
        return client

    async def set_registration(self, client: Client, data: ClientCreate) -> None:
        """Store `data` as the client's registration; its client_id and secret stay."""
        for name, value in data.model_dump(exclude={"client_id"}).items():
            setattr(client, name, value)
        await self.session.flush()

    async def set_secret_hash(self, client: Client, secret_hash: str) -> None:
        client.secret_hash = secret_hash
        await self.session.flush()

    async def delete(self, client: Client) -> None:
        await self.session.delete(client)
        await self.session.flush()
