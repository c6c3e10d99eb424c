"""Alembic, driven from code: upgrade, downgrade and the schema revision check."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations

# An arbitrary constant: the PostgreSQL advisory lock that serialises servers
# and workers migrating the same database at the same time.
MIGRATION_LOCK_ID = 0x61757468

_Action = Callable[[Config], None]


@dataclass(frozen=True)
class Migration:
    """What a migration run did: the schema revision before and after."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


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


async def upgrade(engine: AsyncEngine, revision: str = "head") -> Migration:
    """Migrate up to `revision`; returns the revisions before and after."""
    return await _run(engine, revision, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> Migration:
    return await _run(
        engine, revision, lambda cfg: command.downgrade(cfg, revision), down=True
    )


async def check_downgrade(engine: AsyncEngine, revision: str) -> None:
    """CommandError unless `revision` is one a downgrade can walk to from here
    (checked before asking anyone to confirm a downgrade)."""

    def check(connection: Connection) -> None:
        _check_target(alembic_config(), connection, revision, down=True, strict=True)

    async with engine.connect() as conn:
        await conn.run_sync(check)


async def get_current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(current_revision)


async def is_at_head(engine: AsyncEngine) -> bool:
    return await get_current(engine) == head_revision()


async def _run(
    engine: AsyncEngine, revision: str, action: _Action, *, down: bool = False
) -> Migration:
    def run(connection: Connection) -> Migration:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
            )
        before = current_revision(connection)
        cfg = alembic_config()
        _check_target(cfg, connection, revision, down=down)
        cfg.attributes["connection"] = connection
        action(cfg)
        return Migration(before, current_revision(connection))

    # On SQLite the engine begins with BEGIN IMMEDIATE, which serialises too.
    async with engine.begin() as conn:
        return await conn.run_sync(run)


def _check_target(
    cfg: Config,
    connection: Connection,
    revision: str,
    *,
    down: bool,
    strict: bool = False,
) -> None:
    """CommandError for a revision that Alembic cannot walk to from here.

    Alembic fails an assert instead of raising CommandError for some targets
    ("", "@", "head+1", "0001-1" on an empty schema). Walking its revision map
    first, the way the command will and before any migration code runs, puts
    that in words; the errors Alembic does report (an unknown revision), it
    reports when it runs, or here already when `strict`.
    """
    scripts = ScriptDirectory.from_config(cfg)
    current = MigrationContext.configure(connection).get_current_heads()
    try:
        if down:
            list(
                scripts.iterate_revisions(current, revision, select_for_downgrade=True)
            )
        else:
            list(scripts.iterate_revisions(revision, current, implicit_base=True))
    except AssertionError:
        where = ", ".join(current) or "an empty schema"
        raise CommandError(f"cannot migrate from {where} to {revision!r}") from None
    except (RevisionError, CommandError) as exc:
        if strict:
            raise CommandError(str(exc)) from None
