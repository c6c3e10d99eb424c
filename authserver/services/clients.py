"""Client registration and authentication (RFC 6749 §2.3)."""

import asyncio
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

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
from authserver.schemas.client import (
    CLIENT_ID_PATTERN,
    ClientChanges,
    ClientCreate,
    UriChanges,
)
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

    When an entry is missing or has expired, one request reads the client
    and the others asking for it meanwhile wait for that read: under load
    an expiry would otherwise send every request in flight to the database
    at once, each holding a pooled connection. If that read fails (or its
    request is cancelled), each waiting request reads on its own, so its
    answer is its own.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Client]] = {}
        # The read in flight per client_id: its detached copy, or None for an
        # unknown client; _READ_FAILED when the waiters must read themselves.
        self._reading: dict[str, asyncio.Future[Client | None | object]] = {}

    async def get(self, client_id: str, lookup: ClientLookup) -> Client | None:
        if self.ttl <= 0:
            return await lookup(client_id)
        cached = self._entries.get(client_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        reading = self._reading.get(client_id)
        if reading is None:
            return await self._read_shared(client_id, lookup)
        # shield: a waiter's cancellation must not cancel the shared read.
        shared = await asyncio.shield(reading)
        if shared is _READ_FAILED:
            client, _ = await self._read(client_id, lookup)
            return client
        return cast(Client | None, shared)

    async def _read_shared(self, client_id: str, lookup: ClientLookup) -> Client | None:
        reading: asyncio.Future[Client | None | object]
        reading = asyncio.get_running_loop().create_future()
        self._reading[client_id] = reading
        shared: Client | None | object = _READ_FAILED
        try:
            client, shared = await self._read(client_id, lookup)
            return client
        finally:
            # Also on failure and cancellation: the waiters then read alone.
            del self._reading[client_id]
            reading.set_result(shared)

    async def _read(
        self, client_id: str, lookup: ClientLookup
    ) -> tuple[Client | None, Client | None]:
        """The client as read, and the copy cached (None: unknown, not cached)."""
        client = await lookup(client_id)
        if client is None:
            self._entries.pop(client_id, None)  # it was deleted
            return None, None
        copy = _detached_copy(client)
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[client_id] = (time.monotonic() + self.ttl, copy)
        return client, copy


# A shared read that gave no answer (it raised or was cancelled).
_READ_FAILED = object()


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


def still_allowed(scope: str, client: Client) -> list[str]:
    """The granted scopes the client may still ask for (its scopes may shrink):
    a token or code issued before `client update` narrowed them gets no more."""
    return [s for s in scope.split() if s in client.scopes]


def _refuse_confidential_only(grant_types: list[str], *, public: bool) -> None:
    if public and CONFIDENTIAL_ONLY_GRANTS & set(grant_types):
        raise InvalidValueError("a public client cannot use client_credentials")


async def create_client(
    data: ClientCreate, uow: UnitOfWork, *, public: bool
) -> tuple[Client, str | None]:
    """Register a client (committed); return it and its secret (None for a
    public client)."""
    clients = ClientRepository(uow.session)
    _refuse_confidential_only(data.grant_types, public=public)
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
    client = await resolve_client(client_id, clients)
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
    """Delete a client (committed, audited); its refresh tokens go with it."""
    clients = ClientRepository(uow.session)
    client = await resolve_client(client_id, clients)
    await clients.delete(client)
    await audit.record(clients.session, "client_deleted", client_id=client.client_id)
    await uow.commit()


async def update_client(
    client_id: str, changes: ClientChanges, uow: UnitOfWork
) -> tuple[Client, list[str]]:
    """Change a client's registration, in one transaction, under the rules of
    `create_client`; return it and the fields that changed (none: nothing is
    written). Its client_id and secret stay; a bad result raises pydantic's
    ValidationError or InvalidValueError before anything is written."""
    clients = ClientRepository(uow.session)
    # Locked: two updates at once must not each write over the other's change.
    client = await resolve_client(client_id, clients, for_update=True)
    current = registration(client)
    # The whole registration is validated, not only what changes: the result
    # must be one `client create` would accept.
    wanted = ClientCreate(**{**current, **_applied(changes, current)})
    _refuse_confidential_only(wanted.grant_types, public=client.is_public)
    after = wanted.model_dump()
    changed = [name for name in current if after[name] != current[name]]
    if not changed:
        return client, []
    await clients.set_registration(client, wanted)
    await audit.record(
        uow.session,
        "client_updated",
        client_id=client.client_id,
        changes={
            name: {"before": current[name], "after": after[name]} for name in changed
        },
    )
    await uow.commit()
    return client, changed


def registration(client: Client) -> dict[str, Any]:
    """The stored registration as `ClientCreate` fields (not re-validated)."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "grant_types": list(client.grant_types),
        "scopes": list(client.scopes),
        "audience": client.audience,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "is_third_party": client.is_third_party,
    }


def _applied(changes: ClientChanges, current: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": changes.name,
        "grant_types": changes.grant_types,
        "scopes": changes.scopes,
        "is_third_party": changes.is_third_party,
    }
    applied = {name: value for name, value in values.items() if value is not None}
    for name, change, what in (
        ("redirect_uris", changes.redirect_uris, "redirect URI"),
        (
            "post_logout_redirect_uris",
            changes.post_logout_redirect_uris,
            "post-logout redirect URI",
        ),
    ):
        if change:
            applied[name] = _changed_uris(current[name], change, what)
    return applied


def _changed_uris(current: list[str], change: UriChanges, what: str) -> list[str]:
    uris = list(current if change.replace is None else change.replace)
    # A typo must not pass for a removal: the URI it meant would stay trusted.
    missing = [uri for uri in change.remove if uri not in uris]
    if missing:
        raise InvalidValueError(
            f"cannot remove {what} {missing[0][:100]!r}: the client does not have it"
        )
    kept = [uri for uri in uris if uri not in change.remove]
    return kept + [uri for uri in change.add if uri not in kept]


async def resolve_client(
    client_id: str, clients: ClientRepository, *, for_update: bool = False
) -> Client:
    """The client with this client_id; NotFoundError if there is none."""
    client = await clients.get_by_client_id(client_id, for_update=for_update)
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
