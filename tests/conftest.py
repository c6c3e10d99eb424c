"""Shared fixtures: one database per backend per run, the app, an HTTP client.

Every database test runs on SQLite and on PostgreSQL. PostgreSQL comes from
AUTH_TEST_POSTGRES_URL (default: the local server); it skips with a reason when
unreachable, unless AUTH_TEST_REQUIRE_POSTGRES=1 (CI), where that fails.
"""

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from authserver.api.state import app_state
from authserver.core.config import Settings, load_settings
from authserver.db.session import SessionFactory
from authserver.main import create_app
from authserver.models import Base

PG_URL = os.environ.get(
    "AUTH_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("AUTH_TEST_REQUIRE_POSTGRES") == "1"
TEST_ISSUER = "http://localhost"
# Client changes must show at once in tests (the cache has its own test).
BASE_OPTIONS = {
    "_env_file": None,
    "bcrypt_rounds": 4,
    "keystore_check_interval": 0,
    "client_cache_ttl": 0,
}


def make_settings(database_url: str, keys_dir: Path, **overrides: object) -> Settings:
    options = {**BASE_OPTIONS, "issuer": TEST_ISSUER, **overrides}
    return load_settings(database_url=database_url, keys_dir=keys_dir, **options)


async def create_pg_database() -> str:
    """A fresh, uniquely named PostgreSQL database; returns its URL."""
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"authtest_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    engine = create_async_engine(PG_URL)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # any failure means: not usable here
        return f"PostgreSQL not reachable at {make_url(PG_URL).render_as_string()}: {type(exc).__name__}"
    finally:
        await engine.dispose()


async def require_postgres() -> None:
    """Skip (locally) or fail (in CI) when PostgreSQL is not there."""
    reason = await postgres_available()
    if reason is None:
        return
    if REQUIRE_PG:
        pytest.fail(f"{reason} (AUTH_TEST_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "test.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    await require_postgres()
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def settings(database_url: str, keys_dir: Path) -> Settings:
    return make_settings(database_url, keys_dir)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def session_factory(app: FastAPI) -> SessionFactory:
    factory: SessionFactory = app_state(app).session_factory
    return factory


@pytest.fixture
async def clean_db(session_factory: SessionFactory) -> AsyncIterator[None]:
    """Each test starts and ends with empty tables."""
    yield
    async with session_factory() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(delete(table))
        await session.commit()


@pytest.fixture
async def api(app: FastAPI, clean_db: None) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url=TEST_ISSUER) as client:
        yield client
