"""Rows of the database key store: the sealed keys and the change counter."""

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.db.session import dialect_name
from authserver.models import SigningKey, SigningKeyStoreVersion

STORE_ROW = 1


class SigningKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def version(self) -> tuple[int | None, int]:
        """The change counter and the row count, in one cheap statement.

        The count catches a counter row deleted and re-created (tests that
        empty every table) whose counter restarted at a value seen before.
        """
        counter = select(SigningKeyStoreVersion.version).where(
            SigningKeyStoreVersion.id == STORE_ROW
        )
        count = select(func.count()).select_from(SigningKey)
        row = (
            await self.session.execute(
                select(counter.scalar_subquery(), count.scalar_subquery())
            )
        ).one()
        return row[0], row[1]

    async def lock(self) -> None:
        """Bump the counter first thing in a write transaction.

        The row lock this takes (PostgreSQL) makes concurrent writers on every
        host take turns until commit; on SQLite the transaction already holds
        the database's write lock (BEGIN IMMEDIATE). Readers see the new value
        only once the change commits.
        """
        bump = (
            update(SigningKeyStoreVersion)
            .where(SigningKeyStoreVersion.id == STORE_ROW)
            .values(version=SigningKeyStoreVersion.version + 1)
        )
        if (await self.session.execute(bump)).rowcount == 1:  # type: ignore[attr-defined]
            return
        # No counter row yet: create it; a concurrent creator wins the race
        # harmlessly (ON CONFLICT), and the UPDATE then waits for its lock.
        insert = (
            pg_insert if dialect_name(self.session) == "postgresql" else sqlite_insert
        )
        await self.session.execute(
            insert(SigningKeyStoreVersion)
            .values(id=STORE_ROW, version=0)
            .on_conflict_do_nothing()
        )
        await self.session.execute(bump)

    async def list(self) -> Sequence[SigningKey]:
        stmt = select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid)
        return (await self.session.scalars(stmt)).all()

    async def add(self, key: SigningKey) -> None:
        self.session.add(key)
        await self.session.flush()

    async def delete(self, kids: Sequence[str]) -> None:
        if kids:
            await self.session.execute(
                delete(SigningKey).where(SigningKey.kid.in_(kids))
            )
