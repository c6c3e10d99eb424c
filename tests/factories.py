"""Test data made through the real services, with valid defaults."""

import uuid
from dataclasses import dataclass
from typing import Any

from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.user import UserRepository
from authserver.db.session import SessionFactory
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import Client, User
from authserver.schemas.client import ClientCreate
from authserver.schemas.user import UserCreate
from authserver.services.clients import create_client
from authserver.services.passwords import PasswordHasher
from authserver.services.users import UserService

DEFAULT_PASSWORD = "correct horse battery"
TEST_HASHER = PasswordHasher(rounds=4)


@dataclass
class TestClient:
    client: Client
    secret: str | None

    @property
    def client_id(self) -> str:
        return self.client.client_id

    @property
    def basic_auth(self) -> tuple[str, str]:
        assert self.secret is not None
        return (self.client.client_id, self.secret)

    def form(self) -> dict[str, str]:
        """client_secret_post parameters (client_id only for a public client)."""
        data = {"client_id": self.client.client_id}
        if self.secret is not None:
            data["client_secret"] = self.secret
        return data


async def make_client(
    factory: SessionFactory,
    *,
    public: bool = False,
    grant_types: tuple[str, ...] = ("password", "refresh_token"),
    scopes: tuple[str, ...] = ("openid", "profile", "email"),
    audience: str | None = None,
    client_id: str | None = None,
    redirect_uris: tuple[str, ...] = (),
    post_logout_redirect_uris: tuple[str, ...] = (),
    is_third_party: bool = False,
    name: str = "Test app",
) -> TestClient:
    data = ClientCreate(
        client_id=client_id or f"app-{uuid.uuid4().hex[:8]}",
        name=name,
        grant_types=list(grant_types),
        scopes=list(scopes),
        audience=audience,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        is_third_party=is_third_party,
    )
    async with factory() as session:
        client, secret = await create_client(
            data, UnitOfWork.joining(session), public=public
        )
    return TestClient(client, secret)


CALLBACK = "https://app.example.com/callback"
LOGGED_OUT = "https://app.example.com/logged-out"
CODE_GRANTS = ("authorization_code", "refresh_token")


async def make_code_client(
    factory: SessionFactory, *, public: bool = True, **overrides: Any
) -> TestClient:
    """A client of the authorization code flow (public: PKCE alone)."""
    options: dict[str, Any] = {
        "grant_types": CODE_GRANTS,
        "redirect_uris": (CALLBACK,),
        "post_logout_redirect_uris": (LOGGED_OUT,),
        **overrides,
    }
    return await make_client(factory, public=public, **options)


async def make_user(
    factory: SessionFactory,
    *,
    username: str | None = None,
    password: str = DEFAULT_PASSWORD,
    email: str | None = None,
    is_admin: bool = False,
    is_active: bool = True,
    hasher: PasswordHasher = TEST_HASHER,
) -> User:
    data = UserCreate(
        username=username or f"user-{uuid.uuid4().hex[:8]}",
        password=password,
        email=email,
        is_admin=is_admin,
    )
    async with factory() as session:
        service = user_service(session, hasher)
        user = await service.create(data)
        if not is_active:
            await service.set_active(user, False)
        await session.commit()
    return user


def user_service(session: Any, hasher: PasswordHasher = TEST_HASHER) -> UserService:
    """The service over a test's own session (its operations commit it)."""
    return UserService.over(UnitOfWork.joining(session), hasher)


async def demote(session_factory: Any, username: str) -> None:
    """Take the admin flag from a user, as an admin would (committed)."""
    async with session_factory() as session:
        service = user_service(session)
        await service.set_admin(await service.resolve(username), False)
