"""The unit of work: autocommit on PostgreSQL only, rollback of what was not
committed, and the end of a transaction a failed statement left unusable."""

import uuid

import pytest
from sqlalchemy import event, func, select

from authserver.core.exceptions import AlreadyExistsError
from authserver.crud.client import ClientRepository
from authserver.db.session import dialect_name
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import AuditEvent, Client
from authserver.schemas.client import ClientCreate
from authserver.services import audit


async def _count(session_factory, marker: str) -> int:
    async with session_factory() as other:
        stmt = select(func.count()).where(AuditEvent.subject == marker)
        return int((await other.execute(stmt)).scalar_one())


async def test_on_postgresql_a_write_stands_alone_on_sqlite_it_waits_for_commit(
    session_factory,
):
    marker = uuid.uuid4().hex
    async with UnitOfWork(session_factory) as uow:
        on_postgresql = dialect_name(uow.session) == "postgresql"
        await uow.session.execute(select(1))  # a read already begun
        await uow.autocommit()
        await audit.record(uow.session, "probe", subject=marker)
        if on_postgresql:
            # Committed by itself: another connection sees it at once.
            assert await _count(session_factory, marker) == 1
        await uow.rollback()  # undoes the write only inside a transaction

    assert await _count(session_factory, marker) == (1 if on_postgresql else 0)


async def test_autocommit_lasts_until_the_commit(session_factory):
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    async with UnitOfWork(session_factory) as uow:
        await uow.autocommit()
        await uow.autocommit()  # again while it lasts: no effect
        await audit.record(uow.session, "probe", subject=first)
        await uow.commit()
        # A new transaction, whatever the backend: the rollback undoes this.
        await audit.record(uow.session, "probe", subject=second)
        await uow.rollback()

    assert await _count(session_factory, first) == 1
    assert await _count(session_factory, second) == 0


async def test_leaving_the_block_drops_what_was_not_committed(session_factory):
    marker = uuid.uuid4().hex
    async with UnitOfWork(session_factory) as uow:
        await audit.record(uow.session, "probe", subject=marker)

    assert await _count(session_factory, marker) == 0


async def test_a_conflict_ends_the_transaction_with_the_block(session_factory):
    client_id = f"uow-{uuid.uuid4().hex[:8]}"
    data = ClientCreate(client_id=client_id, name="first", grant_types=["password"])
    async with UnitOfWork(session_factory) as uow:
        await ClientRepository(uow.session).add(data, secret_hash=None)
        await uow.commit()

    with pytest.raises(AlreadyExistsError):
        async with UnitOfWork(session_factory) as uow:
            await ClientRepository(uow.session).add(data, secret_hash=None)
    assert not uow.session.in_transaction()  # rolled back and released

    async with session_factory() as session:
        stmt = select(func.count()).where(Client.client_id == client_id)
        assert (await session.execute(stmt)).scalar_one() == 1


async def test_an_object_added_but_not_flushed_is_committed(session_factory):
    # session.add() begins no transaction: the commit must flush it anyway.
    marker = uuid.uuid4().hex
    async with UnitOfWork(session_factory) as uow:
        uow.session.add(AuditEvent(event="probe", subject=marker))
        await uow.commit()

    assert await _count(session_factory, marker) == 1


async def test_a_commit_of_a_session_that_began_nothing_begins_nothing(
    session_factory,
):
    commits: list[object] = []
    async with UnitOfWork(session_factory) as uow:
        session = uow.session  # opened, as a repository's first use does
        event.listen(session.sync_session, "after_commit", commits.append)
        await uow.commit()
        assert commits == []  # no empty transaction went round
        await audit.record(session, "probe", subject=uuid.uuid4().hex)
        await uow.commit()
        assert len(commits) == 1
