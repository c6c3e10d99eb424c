"""Client registration and authentication (RFC 6749 §2.3)."""

from dataclasses import dataclass

from authserver.core.exceptions import (
    InvalidClientError,
    InvalidValueError,
    NotFoundError,
)
from authserver.core.security import (
    DUMMY_CLIENT_SECRET_HASH,
    generate_client_secret,
    hash_client_secret,
    verify_client_secret,
)
from authserver.crud.client import ClientRepository
from authserver.models import Client
from authserver.schemas.client import ClientCreate


@dataclass(frozen=True)
class ClientCredentials:
    """What a request presented: from HTTP Basic or from the form body."""

    client_id: str
    secret: str | None
    used_basic: bool


async def authenticate_client(
    credentials: ClientCredentials | None, clients: ClientRepository
) -> Client:
    """The authenticated client, or InvalidClientError (same words for every cause)."""
    if credentials is None:
        raise InvalidClientError(detail="no client credentials")
    used_basic = credentials.used_basic
    client = await clients.get_by_client_id(credentials.client_id)
    if client is None:
        if credentials.secret is not None:
            verify_client_secret(credentials.secret, DUMMY_CLIENT_SECRET_HASH)
        raise InvalidClientError(detail="unknown client", used_basic=used_basic)
    if client.secret_hash is None:
        if credentials.secret is not None:
            raise InvalidClientError(
                detail="public client presented a secret", used_basic=used_basic
            )
        return client
    if credentials.secret is None:
        raise InvalidClientError(
            detail="confidential client without secret", used_basic=used_basic
        )
    if not verify_client_secret(credentials.secret, client.secret_hash):
        raise InvalidClientError(detail="wrong client secret", used_basic=used_basic)
    return client


async def create_client(
    data: ClientCreate, clients: ClientRepository, *, public: bool
) -> tuple[Client, str | None]:
    """Register a client; return it and its secret (None for a public client)."""
    secret = None if public else generate_client_secret()
    secret_hash = hash_client_secret(secret) if secret else None
    client = await clients.add(data, secret_hash=secret_hash)
    return client, secret


async def rotate_client_secret(client_id: str, clients: ClientRepository) -> str:
    """Give a confidential client a new secret; the old one stops working."""
    client = await clients.get_by_client_id(client_id)
    if client is None:
        raise NotFoundError(f"no client {client_id!r}")
    if client.secret_hash is None:
        raise InvalidValueError(f"client {client_id!r} is public and has no secret")
    secret = generate_client_secret()
    await clients.set_secret_hash(client, hash_client_secret(secret))
    return secret
