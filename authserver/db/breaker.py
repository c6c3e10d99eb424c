"""A circuit breaker on the database connection path, installed as engine events.

Every use of the database goes through an engine, so the engine is where the
breaker sits; repositories and sessions know nothing of it:

- `do_connect` (a new connection): refuse while open; count a failed connect.
- pool `checkout` (a pooled connection): refuse while open, so a request never
  waits on a connection to a server that is known to be gone.
- `handle_error` (a statement, commit or rollback): count connection-level
  failures and mark the connection dead.
- `after_cursor_execute`: a statement came back, so the database is there.

Only connection-level failures count; a duplicate key, a bad value or a missing
table is the database answering. Every failure that counts, and every request
refused while open, surfaces as DatabaseUnavailableError, which the API renders
as 503. The state machine is the circuitbreaker library's: open after
`failure_threshold` failures in a row, half-open after `recovery_timeout`
seconds (requests go through again), closed by the first success or open again
by the first failure.
"""

import logging
from typing import Any

from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker
from sqlalchemy import event
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from authserver.core import metrics
from authserver.core.exceptions import DatabaseUnavailableError

logger = logging.getLogger(__name__)

STATES = (STATE_CLOSED, STATE_OPEN, STATE_HALF_OPEN)


def is_connection_failure(exc: BaseException) -> bool:
    """True for a failure of the connection path, never for the database's answer.

    asyncpg raises OSError (refused, reset) and TimeoutError bare, unwrapped by
    SQLAlchemy; a dropped connection is an InterfaceError or a DBAPIError marked
    invalidated. An OperationalError alone is not enough: SQLite raises it for
    "no such table" too, which is a bug to surface as 500, not an outage.
    """
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, InterfaceError)
    return isinstance(exc, OSError | TimeoutError | PoolTimeoutError)


def is_connect_failure(exc: BaseException, dialect: Dialect) -> bool:
    """True when opening a new connection failed: any driver error counts here."""
    return isinstance(
        exc, dialect.loaded_dbapi.Error | OperationalError
    ) or is_connection_failure(exc)


def _counted(_exc_type: type[BaseException], _exc: BaseException) -> bool:
    # The engine hooks below decide what is a failure before they report it.
    return True


class DatabaseBreaker:
    """The library's CircuitBreaker, fed by engine events instead of a decorator."""

    def __init__(self, failure_threshold: int, recovery_timeout: float) -> None:
        self._breaker = CircuitBreaker(
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout,
            expected_exception=_counted,
            name="database",
        )
        self._published: str | None = None
        self.publish()

    @property
    def state(self) -> str:
        state: str = self._breaker.state
        return state

    @property
    def failure_count(self) -> int:
        count: int = self._breaker.failure_count
        return count

    def retry_after(self) -> int:
        """Seconds a client should wait: until the half-open probe, at least 1."""
        remaining: int = self._breaker.open_remaining
        return max(1, remaining) if self.state == STATE_OPEN else 1

    def check(self) -> None:
        """Raise DatabaseUnavailableError at once while the breaker is open."""
        if self._breaker.opened:
            raise DatabaseUnavailableError(
                detail="database circuit breaker open", retry_after=self.retry_after()
            )
        self.publish()

    def record_success(self) -> None:
        if self._breaker.failure_count or self._published != STATE_CLOSED:
            self._breaker.reset()
            self.publish()

    def record_failure(self, exc: BaseException) -> None:
        """Count one connection failure (the caller has classified `exc`)."""
        metrics.DB_CONNECTION_FAILURES.inc()
        # The library counts a failure when its context manager exits with an
        # exception its predicate accepts; this is that exit, driven by hand.
        self._breaker.__exit__(type(exc), exc, exc.__traceback__)
        self.publish()

    def unavailable(self, exc: BaseException) -> DatabaseUnavailableError:
        """The error a request sees for a connection failure."""
        return DatabaseUnavailableError(
            detail=f"database connection failed: {type(exc).__name__}",
            retry_after=self.retry_after(),
        )

    def publish(self) -> None:
        """Export the state and log transitions (half-open is noticed lazily)."""
        state = self.state
        if state == self._published:
            return
        previous, self._published = self._published, state
        for name in STATES:
            metrics.DB_BREAKER_STATE.labels(state=name).set(int(name == state))
        if previous is None:
            return
        if state == STATE_OPEN:
            metrics.DB_BREAKER_OPENED.inc()
            logger.warning(
                "db_breaker_opened",
                extra={
                    "failures": self.failure_count,
                    "retry_after": self.retry_after(),
                    "last_failure": type(self._breaker.last_failure).__name__,
                },
            )
        else:
            log = logger.warning if state == STATE_HALF_OPEN else logger.info
            log(f"db_breaker_{state}", extra={"previous": previous})


def install_breaker(engine: AsyncEngine, breaker: DatabaseBreaker) -> None:
    """Put `breaker` on every connection path of `engine` (see module docstring)."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "do_connect")
    def _connect(
        dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
    ) -> Any:
        breaker.check()
        try:
            connection = dialect.connect(*cargs, **cparams)
        except Exception as exc:
            if not is_connect_failure(exc, dialect):
                raise
            breaker.record_failure(exc)
            raise breaker.unavailable(exc) from exc
        breaker.record_success()
        return connection

    @event.listens_for(sync_engine.pool, "checkout")
    def _checkout(*_args: Any) -> None:
        breaker.check()

    @event.listens_for(sync_engine, "handle_error")
    def _error(context: ExceptionContext) -> BaseException | None:
        if context.connection is None or not isinstance(
            context.original_exception, Exception
        ):
            # A connect error (_connect has dealt with it) or a cancellation,
            # which must stay a cancellation and says nothing about the server.
            return None
        exc: BaseException = context.sqlalchemy_exception or context.original_exception
        if not (context.is_disconnect or is_connection_failure(exc)):
            return None
        # asyncpg's bare OSError is no DBAPI error, so SQLAlchemy would keep
        # the broken connection in the pool: have it thrown away.
        context.is_disconnect = True
        breaker.record_failure(exc)
        return breaker.unavailable(exc)

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _executed(*_args: Any) -> None:
        breaker.record_success()
