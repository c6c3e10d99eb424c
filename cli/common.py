"""Helpers every authctl command shares: settings, the session, error exits.

A command is a thin sync function: it parses options, builds its input with the
project's schemas (`build`), bridges into one coroutine with `run` and prints
the result (`cli.output`). `run` turns every expected failure into one line on
stderr and exit code 1; Click itself exits 2 on usage errors.

The heavy stack (SQLAlchemy, Alembic, pydantic, the services) is imported
inside the functions that use it, never at module level: `authctl --help` and
`--version` load none of it and answer at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cli.output import fail

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError
    from pydantic_core import ErrorDetails
    from sqlalchemy.engine import Dialect
    from sqlalchemy.ext.asyncio import AsyncEngine

    from authserver.core.config import ConfigError, Settings
    from authserver.db.unit_of_work import UnitOfWork

T = TypeVar("T")
M = TypeVar("M", bound="BaseModel")


def settings() -> Settings:
    """The AUTH_ settings (and .env), read once per process like the server does."""
    from authserver.core.config import ConfigError, get_settings

    try:
        return get_settings()
    except ConfigError as exc:
        fail(str(exc))


def run(
    coro: Coroutine[Any, Any, T],
    names: Mapping[str, str] | None = None,
    hints: Mapping[str, str] | None = None,
) -> T:
    """Run one command's coroutine on its own event loop; expected failures exit 1.

    `names` and `hints` word a schema's ValidationError as `build` does.
    """
    from alembic.util.exc import CommandError
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError

    from authserver.core.config import ConfigError
    from authserver.core.exceptions import DomainError
    from authserver.db.init import DatabaseNotReadyError
    from authserver.services.keystore import KeyStoreError

    try:
        return asyncio.run(coro)
    except (
        ConfigError,
        DomainError,
        DatabaseNotReadyError,
        KeyStoreError,
        CommandError,
    ) as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(validation_message(exc, names, hints))
    except (DBAPIError, OSError) as exc:
        # asyncpg raises a bare OSError when the server is down (see STACK.md).
        fail(database_problem(exc))


def build(
    model: type[M],
    names: Mapping[str, str] | None = None,
    hints: Mapping[str, str] | None = None,
    **data: Any,
) -> M:
    """Validate command input with the API's own schema; a bad value exits 1."""
    from pydantic import ValidationError

    try:
        return model(**data)
    except ValidationError as exc:
        fail(validation_message(exc, names, hints))


def check(
    model: type[BaseModel],
    names: Mapping[str, str] | None = None,
    hints: Mapping[str, str] | None = None,
    *,
    later: str,
    **data: Any,
) -> None:
    """Validate every field but `later` now: nobody should type a password for
    a username that is then refused. A bad value exits 1."""
    from pydantic import ValidationError

    try:
        model(**data)
    except ValidationError as exc:
        errors = [error for error in exc.errors() if error["loc"][:1] != (later,)]
        if errors:
            fail(error_message(errors[0], names, hints))


def validation_message(
    exc: ValidationError,
    names: Mapping[str, str] | None = None,
    hints: Mapping[str, str] | None = None,
) -> str:
    """The first problem in one line, naming the option the admin typed."""
    return error_message(exc.errors()[0], names, hints)


def error_message(
    error: ErrorDetails,
    names: Mapping[str, str] | None = None,
    hints: Mapping[str, str] | None = None,
) -> str:
    """One validation problem in one line, naming the option the admin typed.

    `hints` replace pydantic's "should match pattern '^...$'" with words.
    """
    field = str(error["loc"][0]) if error["loc"] else "value"
    name = (names or {}).get(field, field)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch" and field in (hints or {}):
        message = (hints or {})[field]
    if message.lower().startswith(field.replace("_", " ")):
        return message  # already names the field ("password must be at least ...")
    return f"invalid {name}: {message[:1].lower()}{message[1:]}"


def database_problem(exc: BaseException) -> str:
    from sqlalchemy.exc import DBAPIError, InterfaceError

    url = safe_url(settings().database_url)
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    text = first_line(reason)
    # SQLite reports a missing file and a missing column alike (OperationalError),
    # so only socket-level failures are called unreachable.
    if not isinstance(exc, DBAPIError) or (
        isinstance(exc, InterfaceError) or exc.connection_invalidated
    ):
        return f"cannot reach the database {url}: {text}"
    return f"database error ({url}): {text}"


def safe_url(url: str) -> str:
    """The URL for a message, its password masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        pass
    # SQLAlchemy cannot parse it (a bad port, an unclosed "["), so neither can
    # it mask the password: mask all between the user name and the last "@".
    scheme, slashes, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not (slashes and at):
        return url
    user, colon, _password = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{location}"


# --- the database --------------------------------------------------------------


@asynccontextmanager
async def open_unit_of_work() -> AsyncIterator[UnitOfWork]:
    """One engine and one unit of work for a command that needs the schema at head.

    Leaving it rolls back whatever the command did not commit.
    """
    from authserver.db.session import create_session_factory
    from authserver.db.unit_of_work import UnitOfWork

    engine = database_engine()
    try:
        await require_schema(engine)
        async with UnitOfWork(create_session_factory(engine)) as uow:
            yield uow
    finally:
        await engine.dispose()


def database_engine(*, create: bool = False) -> AsyncEngine:
    """The engine for AUTH_DATABASE_URL, after a cheap check of SQLite's path.

    Only commands that build the schema (`db upgrade`, `serve`) pass `create`:
    any other command would leave an empty SQLite file behind, and then fail
    on it, when AUTH_DATABASE_URL names a file that does not exist.

    A URL that SQLAlchemy or the driver cannot make sense of (a port that is no
    number or out of range, a parameter the driver does not take) raises
    ConfigError, now or at the first connection; `run` reports it in one line.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from authserver.db.session import create_engine

    current = settings()
    try:
        url = make_url(current.database_url)
    except (ArgumentError, ValueError):
        # Not the parser's words: they quote pieces of the URL, which may be
        # pieces of the password (one with an "@" in it, say).
        raise _bad_database_url("malformed host or port") from None
    if current.is_sqlite:
        _check_sqlite_file(url.database, uri="uri" in url.query, create=create)
    try:
        engine = create_engine(current)  # turns the query into connect() arguments
    except (ArgumentError, ValueError) as exc:
        raise _bad_database_url(first_line(exc)) from None
    event.listen(engine.sync_engine, "do_connect", _connect_checked)
    return engine


def _check_sqlite_file(path: str | None, *, uri: bool, create: bool) -> None:
    from authserver.db.init import DatabaseNotReadyError

    if not path or path == ":memory:" or uri:
        return  # in memory, or a file: URI whose path SQLite itself parses
    file = Path(path)
    # SQLite would fail with a vague "unable to open database file" (and
    # aiosqlite leave a thread behind); name the real problem instead.
    if not file.parent.is_dir():
        raise DatabaseNotReadyError(
            f"cannot open the SQLite database {path}: "
            f"directory {file.parent} does not exist"
        )
    if not create and not file.exists():
        raise DatabaseNotReadyError(
            f"no database at {file.resolve()} (AUTH_DATABASE_URL): "
            "`authctl db upgrade` or `authctl serve` creates it"
        )


def _connect_checked(
    dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    # Only here does the driver see its arguments; what it rejects outright
    # (port 99999, a libpq parameter such as sslmode) is the URL's fault.
    try:
        return dialect.connect(*cargs, **cparams)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _bad_database_url(first_line(exc)) from exc


def _bad_database_url(reason: str) -> ConfigError:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from authserver.core.config import ConfigError

    url = settings().database_url
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        password = None
    if password:  # should a driver ever quote it
        reason = reason.replace(str(password), "***")
    return ConfigError(f"invalid setting AUTH_DATABASE_URL ({safe_url(url)}): {reason}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its class name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def require_schema(engine: AsyncEngine) -> None:
    """Refuse to touch tables whose shape this code does not know."""
    from authserver.db import migrate
    from authserver.db.init import DatabaseNotReadyError

    current = await migrate.get_current(engine)
    head = migrate.head_revision()
    if current == head:
        return
    if current is not None and not _known_revision(current):
        raise DatabaseNotReadyError(
            f"the database schema is at revision {current}, which this authserver "
            f"does not know (it expects {head}): is the database newer than the code?"
        )
    raise DatabaseNotReadyError(
        f"the database schema is at revision {current or 'none'}, not {head}: "
        "run `authctl db upgrade`"
    )


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    from authserver.db import migrate

    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False
