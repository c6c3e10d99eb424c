"""Migrations and models agree; upgrade and downgrade work on both backends."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from authserver.api.state import app_state
from authserver.db import migrate
from authserver.db.session import create_engine
from authserver.models import Base
from tests.conftest import (
    create_pg_database,
    drop_pg_database,
    make_settings,
    require_postgres,
)


async def test_models_match_migrations(app):
    engine = app_state(app).session_factory.kw["bind"]

    def diff(connection):
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.is_at_head(engine)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_upgrade_and_downgrade_round_trip(backend, tmp_path):
    if backend == "postgres":
        await require_postgres()
        url = await create_pg_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'round.db'}"
    engine = create_engine(make_settings(url, tmp_path))
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert {"users", "clients", "refresh_tokens"} <= tables

        await migrate.downgrade(engine, "base")
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert tables <= {"alembic_version"}
        assert await migrate.get_current(engine) is None

        await migrate.upgrade(engine)
        assert await migrate.is_at_head(engine)
    finally:
        await engine.dispose()
        if backend == "postgres":
            await drop_pg_database(url)


async def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path):
    engine = create_engine(
        make_settings(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", tmp_path)
    )
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()
