"""Client registration and authentication (RFC 6749 §2.3)."""

import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from authserver.core.context import annotate_request
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
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import Client
from authserver.schemas.client import CLIENT_ID_PATTERN, ClientCreate
from authserver.services import audit

# Grants that authenticate nobody but the client itself: a public client has no
# credentials, so it must never be allowed one (RFC 6749 §4.4).
CONFIDENTIAL_ONLY_GRANTS = frozenset({"client_credentials"})

# How a client is read when it is not cached: by client_id, from the database.
ClientLookup = Callable[[str], Awaitable[Client | None]]


@dataclass(frozen=True)
class ClientCredentials:
    """What a request presented: from HTTP Basic or from the form body."""

    client_id: str
    secret: str | None


class ClientCache:
    """Clients read in the last `ttl` seconds, so hot grants skip a database read.

    A change made elsewhere (secret rotated, client deleted, grants changed)
    reaches every process within `ttl`; 0 turns the cache off. Entries are
    detached copies: no session can expire them under a concurrent request.
    Unknown client_ids are not cached, so a new client works at once.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Client]] = {}

    async def get(self, client_id: str, lookup: ClientLookup) -> Client | None:
        if self.ttl <= 0:
            return await lookup(client_id)
        now = time.monotonic()
        cached = self._entries.get(client_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        client = await lookup(client_id)
        if client is None:
            self._entries.pop(client_id, None)
            return None
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[client_id] = (now + self.ttl, _detached_copy(client))
        return client


def _detached_copy(client: Client) -> Client:
    return Client(
        id=client.id,
        client_id=client.client_id,
        name=client.name,
        secret_hash=client.secret_hash,
        grant_types=list(client.grant_types),
        scopes=list(client.scopes),
        audience=client.audience,
        redirect_uris=list(client.redirect_uris),
        post_logout_redirect_uris=list(client.post_logout_redirect_uris),
        is_third_party=client.is_third_party,
        created_at=client.created_at,
        updated_at=client.updated_at,
    )


async def authenticate_client(
    credentials: ClientCredentials | None,
    lookup: ClientLookup,
    cache: ClientCache | None = None,
) -> Client:
    """The authenticated client, or InvalidClientError (same words for every cause)."""
    client = await _authenticate(credentials, lookup, cache)
    annotate_request(client_id=client.client_id)  # for the access-log line
    return client


async def _authenticate(
    credentials: ClientCredentials | None,
    lookup: ClientLookup,
    cache: ClientCache | None,
) -> Client:
    if credentials is None:
        raise InvalidClientError(detail="no client credentials")
    if cache is not None:
        client = await cache.get(credentials.client_id, lookup)
    else:
        client = await lookup(credentials.client_id)
    if client is None:
        if credentials.secret is not None:
            verify_client_secret(credentials.secret, DUMMY_CLIENT_SECRET_HASH)
        raise InvalidClientError(detail="unknown client")
    if client.secret_hash is None:
        if credentials.secret is not None:
            raise InvalidClientError(detail="public client presented a secret")
        return client
    if credentials.secret is None:
        raise InvalidClientError(detail="confidential client without secret")
    if not verify_client_secret(credentials.secret, client.secret_hash):
        raise InvalidClientError(detail="wrong client secret")
    return client


async def create_client(
    data: ClientCreate, uow: UnitOfWork, *, public: bool
) -> tuple[Client, str | None]:
    """Register a client (committed); return it and its secret (None for a
    public client)."""
    clients = ClientRepository(uow.session)
    if public and CONFIDENTIAL_ONLY_GRANTS & set(data.grant_types):
        raise InvalidValueError("a public client cannot use client_credentials")
    secret = None if public else generate_client_secret()
    secret_hash = hash_client_secret(secret) if secret else None
    client = await clients.add(data, secret_hash=secret_hash)
    await audit.record(clients.session, "client_created", client_id=client.client_id)
    await uow.commit()
    return client, secret


async def rotate_client_secret(client_id: str, uow: UnitOfWork) -> str:
    """Give a confidential client a new secret (committed); the old one stops
    working."""
    clients = ClientRepository(uow.session)
    client = await clients.get_by_client_id(client_id)
    if client is None:
        raise NotFoundError(f"no client {client_id!r}")
    if client.secret_hash is None:
        raise InvalidValueError(f"client {client_id!r} is public and has no secret")
    secret = generate_client_secret()
    await clients.set_secret_hash(client, hash_client_secret(secret))
    await audit.record(
        clients.session, "client_secret_rotated", client_id=client.client_id
    )
    await uow.commit()
    return secret


async def delete_client(client_id: str, uow: UnitOfWork) -> None:
    """Delete a client (committed); its refresh tokens go with it."""
    clients = ClientRepository(uow.session)
    await clients.delete(await resolve_client(client_id, clients))
    await uow.commit()


async def resolve_client(client_id: str, clients: ClientRepository) -> Client:
    """The client with this client_id; NotFoundError if there is none."""
    client = await clients.get_by_client_id(client_id)
    if client is None:
        raise NotFoundError(f"no client {client_id!r}")
    return client


def client_id_from_name(name: str) -> str:
    """A readable client_id from a display name: "My App!" -> "my-app"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:100].rstrip("-")
    if not CLIENT_ID_PATTERN.fullmatch(slug):
        raise InvalidValueError(
            f"cannot derive a client_id from {name!r}; give one explicitly"
        )
    return slug
