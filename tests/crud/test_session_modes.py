"""use_autocommit: statements outside a transaction on PostgreSQL, and only there."""

import uuid

from sqlalchemy import func, select

from authserver.db.session import dialect_name, use_autocommit
from authserver.models import AuditEvent
from authserver.services import audit


async def _count(session_factory, marker: str) -> int:
    async with session_factory() as other:
        stmt = select(func.count()).where(AuditEvent.subject == marker)
        return int((await other.execute(stmt)).scalar_one())


async def test_on_postgresql_a_write_stands_alone_on_sqlite_it_waits_for_commit(
    session_factory,
):
    marker = uuid.uuid4().hex
    async with session_factory() as session:
        on_postgresql = dialect_name(session) == "postgresql"
        await session.execute(select(1))  # a read already begun (the client lookup)
        await use_autocommit(session)
        await audit.record(session, "probe", subject=marker)
        if on_postgresql:
            # Committed by itself: another connection sees it at once.
            assert await _count(session_factory, marker) == 1
        await session.rollback()  # undoes the write only inside a transaction

    assert await _count(session_factory, marker) == (1 if on_postgresql else 0)


async def test_autocommit_lasts_until_the_session_commits(session_factory):
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    async with session_factory() as session:
        await use_autocommit(session)
        await use_autocommit(session)  # again while it lasts: no effect
        await audit.record(session, "probe", subject=first)
        await session.commit()
        # A new transaction, whatever the backend: the rollback undoes this.
        await audit.record(session, "probe", subject=second)
        await session.rollback()

    assert await _count(session_factory, first) == 1
    assert await _count(session_factory, second) == 0
