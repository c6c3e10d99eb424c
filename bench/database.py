"""A fresh database for one run, filled through the project's own services.

SQLite: a new file in the run's temp dir. PostgreSQL: a new database created
beside the one the URL names (which is used only to connect), dropped at the
end. Then migrations, the first signing key, one confidential client and one
user per virtual user, all made the way the API and authctl make them.
"""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from authserver.core.config import Settings, load_settings
from authserver.crud.client import ClientRepository
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.user import UserRepository
from authserver.db import migrate
from authserver.db.session import create_engine, create_session_factory
from authserver.schemas.client import ClientCreate
from authserver.schemas.user import UserCreate
from authserver.services.clients import create_client
from authserver.services.keystore import keystore_from_settings
from authserver.services.passwords import PasswordHasher
from authserver.services.users import UserService

CLIENT_ID = "bench-client"
USER_PASSWORD = "bench-password-0"
AUDIENCE = "urn:bench:api"  # as the peer's access tokens
SCOPES = ["api:read", "api:write"]  # no openid: no ID token, like the peer
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
USER_BATCH = 200


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    users: tuple[tuple[str, str], ...]


def database_label(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def resolve_database_url(spec: str) -> str:
    """`sqlite`, `postgres` or a full SQLAlchemy async URL."""
    match spec:
        case "sqlite":
            return "sqlite+aiosqlite://"  # a file is chosen per run
        case "postgres" | "postgresql":
            return DEFAULT_POSTGRES
    if spec.startswith("postgresql://"):
        spec = "postgresql+asyncpg://" + spec.removeprefix("postgresql://")
    if spec.startswith("sqlite://"):
        spec = "sqlite+aiosqlite://" + spec.removeprefix("sqlite://")
    return spec


@asynccontextmanager
async def fresh_database(url: str, workdir: Path, keep: bool) -> AsyncIterator[str]:
    """Yield the URL of an empty database made for this run only."""
    if url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    name = f"authbench_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        if not keep:
            async with admin.connect() as conn:
                await conn.execute(
                    text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )
        await admin.dispose()


def server_settings(
    database_url: str, keys_dir: Path, issuer: str, bcrypt_rounds: int
) -> Settings:
    return load_settings(
        _env_file=None,
        database_url=database_url,
        keys_dir=keys_dir,
        issuer=issuer,
        bcrypt_rounds=bcrypt_rounds,
    )


def server_env(settings: Settings) -> dict[str, str]:
    """The AUTH_* variables that make the server process use `settings`."""
    return {
        "AUTH_DATABASE_URL": settings.database_url,
        "AUTH_ISSUER": settings.issuer,
        "AUTH_KEYS_DIR": str(settings.keys_dir),
        "AUTH_BCRYPT_ROUNDS": str(settings.bcrypt_rounds),
    }


class _HashOnce(PasswordHasher):
    """Every bench user has the same password, so one hash serves them all.

    At cost 12 a hash takes ~0.2 s: hashing per user would make setup, not the
    benchmark, the slow part. A verify costs the same whatever the salt.
    """

    def __init__(self, rounds: int) -> None:
        super().__init__(rounds)
        self._hashes: dict[str, str] = {}

    async def hash(self, password: str) -> str:
        if password not in self._hashes:
            self._hashes[password] = await super().hash(password)
        return self._hashes[password]


async def populate(settings: Settings, user_count: int) -> Credentials:
    """Migrate, create the first key, the client and `user_count` users."""
    engine = create_engine(settings)
    try:
        await migrate.upgrade(engine)
        await keystore_from_settings(settings).ensure_signing_key()
        factory = create_session_factory(engine)
        async with factory() as session:
            _, secret = await create_client(
                ClientCreate(
                    client_id=CLIENT_ID,
                    name="Benchmark client",
                    grant_types=["password", "refresh_token", "client_credentials"],
                    scopes=SCOPES,
                    audience=AUDIENCE,
                ),
                ClientRepository(session),
                public=False,
            )
            await session.commit()
        assert secret is not None
        hasher = _HashOnce(settings.bcrypt_rounds)
        users = tuple((f"bench-user-{i}", USER_PASSWORD) for i in range(user_count))
        for start in range(0, user_count, USER_BATCH):
            async with factory() as session:
                service = UserService(
                    UserRepository(session), RefreshTokenRepository(session), hasher
                )
                for username, password in users[start : start + USER_BATCH]:
                    await service.create(
                        UserCreate(username=username, password=password)
                    )
                await session.commit()
        return Credentials(CLIENT_ID, secret, users)
    finally:
        await engine.dispose()
