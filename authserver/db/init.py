"""Bootstrap at start-up: bring the schema to head (or insist it is there)."""

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from authserver.core.config import Settings
from authserver.db import migrate


class DatabaseNotReadyError(Exception):
    """The database is unreachable or its schema is not at the latest revision."""


async def prepare_database(
    engine: AsyncEngine, settings: Settings
) -> migrate.Migration | None:
    """Migrate to head (AUTH_AUTO_MIGRATE) and say what changed, or insist the
    schema is at head already and return None."""
    try:
        if settings.auto_migrate:
            return await migrate.upgrade(engine)
        at_head = await migrate.is_at_head(engine)
    except (DBAPIError, OSError) as exc:
        raise DatabaseNotReadyError(
            f"cannot reach the database: {type(exc).__name__}"
        ) from exc
    if not at_head:
        raise DatabaseNotReadyError(
            "the database schema is not at the latest revision; "
            "run `authctl db upgrade` (or set AUTH_AUTO_MIGRATE=true)"
        )
    return None
