"""The unit of work: the one owner of a session's transaction.

Only services (the grants among them) tell it to commit, roll back, switch to
autocommit or begin a new transaction: the service call that finishes a piece
of work commits it, and a step such as a successful sign-in leaves its writes
to the call that finishes. Routes and CLI commands open a unit of work and use
its session through services and repositories, but never end its transaction
themselves. Repositories only run statements in the session it hands them.
tests/unit/test_layering.py holds everyone to that.

The session opens on first use: a client_credentials grant for a cached
client needs no database at all. Leaving the `async with` block returns the
connection and rolls back whatever was not committed, which is also the
answer to a failed statement: an IntegrityError a repository turned into
AlreadyExistsError leaves the transaction unusable, and the error that ends
the block ends the transaction with it.
"""

from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from authserver.db.session import AUTOCOMMIT, dialect_name


class UnitOfWork:
    def __init__(self, factory: Callable[[], AsyncSession]) -> None:
        self._factory = factory
        self._session: AsyncSession | None = None

    @classmethod
    def joining(cls, session: AsyncSession) -> Self:
        """A unit of work over a session its caller opened (and will close)."""
        return cls(lambda: session)

    @property
    def session(self) -> AsyncSession:
        """The session repositories run their statements in (opened on first use)."""
        if self._session is None:
            self._session = self._factory()
        return self._session

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def commit(self) -> None:
        """Store what the transaction wrote (and, on SQLite, release the one
        write lock: end a read transaction this way before slow work)."""
        session = self._session
        # A session that began nothing and holds nothing to flush has nothing
        # to commit: a refresh whose rotation went out in a shared statement
        # (db.rotation_batcher) skips the empty round of SQLAlchemy's commit.
        if session is not None and (
            session.in_transaction() or session.new or session.dirty or session.deleted
        ):
            await session.commit()

    async def rollback(self) -> None:
        """Drop what the transaction wrote; loaded objects expire."""
        if self._session is not None:
            await self._session.rollback()

    async def close(self) -> None:
        """Return the connection if a transaction holds one (rolling it back).

        A session holds a connection only inside a transaction: most paths
        end theirs by committing, and then there is nothing to do.
        """
        session = self._session
        if session is not None and session.in_transaction():
            await session.close()

    async def new_transaction(self) -> None:
        """Leave autocommit (or an open read) for a transaction of its own:
        the next statement begins it, in the default isolation."""
        if self._session is not None:
            await self._session.close()

    async def autocommit(self) -> None:
        """On PostgreSQL, run the following statements outside a transaction.

        For a path whose every write is a single atomic statement, this saves
        the BEGIN and COMMIT round trips. It lasts until the next commit or
        `new_transaction()`. Called again while it lasts, it does nothing;
        call it right before the first statement, so the connection is not
        held while nothing runs on it. On SQLite it does nothing: there every
        transaction takes the one write lock up front (BEGIN IMMEDIATE), which
        such a path relies on instead.
        """
        session = self.session
        if dialect_name(session) != "postgresql":
            return
        if session.in_transaction():
            connection = (await session.connection()).sync_connection
            assert connection is not None  # the session's transaction holds one
            options = connection.get_execution_options()
            if options.get("isolation_level") == AUTOCOMMIT:
                return
            await session.commit()  # a read done before (the client lookup)
        await session.connection(execution_options={"isolation_level": AUTOCOMMIT})
