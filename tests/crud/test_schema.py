"""Migrations and models agree; upgrade and downgrade work on both backends."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
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


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_0004_gives_every_stored_family_its_row(backend, tmp_path):
    """Families with refresh tokens get their row: live ones live, one whose
    every token is revoked revoked; the way back restores each token's end."""
    if backend == "postgres":
        await require_postgres()
        url = await create_pg_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'families.db'}"
    engine = create_engine(make_settings(url, tmp_path))
    now = datetime.now(UTC).replace(microsecond=0)
    user_id, client_pk = uuid.uuid4(), uuid.uuid4()
    live, dead = uuid.uuid4(), uuid.uuid4()
    users = sa.table(
        "users",
        *(sa.column(n) for n in ("username", "username_key", "password_hash")),
        *(sa.column(n, sa.Boolean) for n in ("email_verified", "is_active")),
        sa.column("is_admin", sa.Boolean),
        sa.column("id", sa.Uuid),
        *(
            sa.column(n, sa.DateTime(timezone=True))
            for n in ("created_at", "updated_at", "password_changed_at")
        ),
    )
    clients = sa.table(
        "clients",
        sa.column("id", sa.Uuid),
        *(sa.column(n) for n in ("client_id", "name")),
        *(sa.column(n, sa.JSON) for n in ("grant_types", "scopes")),
        *(
            sa.column(n, sa.DateTime(timezone=True))
            for n in ("created_at", "updated_at")
        ),
    )
    tokens = sa.table(
        "refresh_tokens",
        sa.column("jti"),
        sa.column("scope"),
        *(sa.column(n, sa.Uuid) for n in ("family_id", "user_id", "client_id")),
        *(
            sa.column(n, sa.DateTime(timezone=True))
            for n in (
                "auth_time",
                "issued_at",
                "expires_at",
                "family_expires_at",
                "revoked_at",
            )
        ),
    )
    family_end = now + timedelta(days=30)

    def token(family: uuid.UUID, revoked: bool) -> dict[str, object]:
        return {
            "jti": str(uuid.uuid4()),
            "scope": "openid",
            "family_id": family,
            "user_id": user_id,
            "client_id": client_pk,
            "auth_time": now,
            "issued_at": now,
            "expires_at": now + timedelta(days=1),
            "family_expires_at": family_end,
            "revoked_at": now if revoked else None,
        }

    try:
        await migrate.upgrade(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(
                users.insert().values(
                    id=user_id,
                    username="u",
                    username_key="u",
                    password_hash="x",
                    email_verified=False,
                    is_active=True,
                    is_admin=False,
                    created_at=now,
                    updated_at=now,
                    password_changed_at=now,
                )
            )
            await conn.execute(
                clients.insert().values(
                    id=client_pk,
                    client_id="c",
                    name="c",
                    grant_types=["password"],
                    scopes=["openid"],
                    created_at=now,
                    updated_at=now,
                )
            )
            rows = [token(live, True), token(live, False), token(dead, True)]
            await conn.execute(tokens.insert(), rows)

        await migrate.upgrade(engine, "0004")
        families = sa.table(
            "token_families",
            sa.column("id", sa.Uuid),
            sa.column("expires_at", sa.DateTime(timezone=True)),
            sa.column("revoked_at", sa.DateTime(timezone=True)),
        )
        async with engine.connect() as conn:
            found = {row.id: row for row in await conn.execute(sa.select(families))}
        assert set(found) == {live, dead}
        assert found[live].revoked_at is None
        assert found[dead].revoked_at is not None
        ends = {_utc(row.expires_at) for row in found.values()}
        assert ends == {family_end}

        await migrate.downgrade(engine, "0003")
        async with engine.connect() as conn:
            restored = (
                await conn.execute(sa.select(tokens.c.family_expires_at))
            ).scalars()
            assert {_utc(end) for end in restored} == {family_end}
    finally:
        await engine.dispose()
        if backend == "postgres":
            await drop_pg_database(url)


def _utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
