"""Alembic, driven from code: upgrade, downgrade and the schema revision check."""

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations

# An arbitrary constant: the PostgreSQL advisory lock that serialises servers
# and workers migrating the same database at the same time.
MIGRATION_LOCK_ID = 0x61757468

_Action = Callable[[Config], None]


def alembic_config(database_url: str | None = None) -> Config:
    """The project's Alembic config, wherever the process runs from."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if database_url:
        cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, lambda cfg: command.downgrade(cfg, revision))


async def get_current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(current_revision)


async def is_at_head(engine: AsyncEngine) -> bool:
    return await get_current(engine) == head_revision()


async def _run(engine: AsyncEngine, action: _Action) -> None:
    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        action(cfg)

    # On SQLite the engine begins with BEGIN IMMEDIATE, which serialises too.
    async with engine.begin() as conn:
        await conn.run_sync(run)
