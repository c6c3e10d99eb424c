"""The short-lived client cache of the token endpoint."""

import uuid
from typing import Any

import pytest

from authserver.models import Client
from authserver.services.clients import ClientCache


class CountingRepository:
    """A stand-in repository that counts reads (the cache's only collaborator)."""

    def __init__(self, client: Client | None) -> None:
        self.client = client
        self.reads = 0

    async def get_by_client_id(self, client_id: str) -> Client | None:
        self.reads += 1
        return self.client


def client(**changes: Any) -> Client:
    fields = {
        "id": uuid.uuid4(),
        "client_id": "app",
        "name": "App",
        "secret_hash": "h1",
        "grant_types": ["client_credentials"],
        "scopes": ["read"],
        "audience": None,
        "redirect_uris": [],
        "post_logout_redirect_uris": [],
        "is_third_party": False,
    }
    return Client(**{**fields, **changes})


async def test_reads_once_within_ttl_then_again(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("authserver.services.clients.time.monotonic", lambda: clock[0])
    repo = CountingRepository(client())
    cache = ClientCache(ttl=5)

    first = await cache.get("app", repo.get_by_client_id)
    second = await cache.get("app", repo.get_by_client_id)
    repo.client = client(secret_hash="h2")
    clock[0] += 5.1
    third = await cache.get("app", repo.get_by_client_id)

    assert repo.reads == 2
    assert first.secret_hash == second.secret_hash == "h1"
    assert third.secret_hash == "h2"


@pytest.mark.parametrize("ttl", [0, 5])
async def test_unknown_clients_are_never_cached(ttl):
    repo = CountingRepository(None)
    cache = ClientCache(ttl=ttl)

    assert await cache.get("app", repo.get_by_client_id) is None
    assert await cache.get("app", repo.get_by_client_id) is None

    assert repo.reads == 2


async def test_ttl_zero_always_reads():
    repo = CountingRepository(client())
    cache = ClientCache(ttl=0)

    await cache.get("app", repo.get_by_client_id)
    await cache.get("app", repo.get_by_client_id)

    assert repo.reads == 2
