"""Two updates of one client at once: the second waits for the first and
builds on it, so neither change is lost (the row lock of `update_client`)."""

import asyncio

from authserver.crud.client import ClientRepository
from authserver.db.unit_of_work import UnitOfWork
from authserver.schemas.client import ClientChanges, UriChanges
from authserver.services.clients import update_client
from tests.factories import CALLBACK, make_code_client

FIRST = "https://app.example.com/first"
SECOND = "https://app.example.com/second"


async def test_an_update_waits_for_one_in_progress_and_keeps_its_change(
    session_factory, clean_db
):
    client = await make_code_client(session_factory)

    async def add_second() -> list[str]:
        async with UnitOfWork(session_factory) as uow:
            changes = ClientChanges(redirect_uris=UriChanges(add=[SECOND]))
            updated, _ = await update_client(client.client_id, changes, uow)
            return list(updated.redirect_uris)

    async with session_factory() as holder:
        # Another update, between its read and its commit.
        row = await ClientRepository(holder).get_by_client_id(
            client.client_id, for_update=True
        )
        assert row is not None
        row.redirect_uris = [*row.redirect_uris, FIRST]
        await holder.flush()
        waiting = asyncio.create_task(add_second())
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await holder.commit()

    assert await asyncio.wait_for(waiting, timeout=30) == [CALLBACK, FIRST, SECOND]
