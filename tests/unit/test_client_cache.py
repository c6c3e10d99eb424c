"""The short-lived client cache of the token endpoint."""

import asyncio
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


class SlowRepository(CountingRepository):
    """Reads that take until `release` is set, and may fail."""

    def __init__(self, client: Client | None, fail: bool = False) -> None:
        super().__init__(client)
        self.release = asyncio.Event()
        self.fail = fail

    async def get_by_client_id(self, client_id: str) -> Client | None:
        self.reads += 1
        first = self.reads == 1
        await self.release.wait()
        if self.fail and first:
            raise ConnectionError("database down")
        return self.client


async def _started(tasks: list[asyncio.Task[Any]]) -> None:
    # Every task has run up to its first wait.
    for _ in range(3):
        await asyncio.sleep(0)


async def test_concurrent_misses_share_one_read():
    repo = SlowRepository(client())
    cache = ClientCache(ttl=5)
    tasks = [
        asyncio.create_task(cache.get("app", repo.get_by_client_id)) for _ in range(50)
    ]
    await _started(tasks)
    repo.release.set()
    found = await asyncio.gather(*tasks)

    assert repo.reads == 1
    assert {c.secret_hash for c in found} == {"h1"}
    # The waiters get the cached copy, never the reader's own session object.
    assert all(c is found[1] for c in found[1:]) and found[0] is repo.client


async def test_an_unknown_client_is_shared_but_not_cached():
    repo = SlowRepository(None)
    cache = ClientCache(ttl=5)
    tasks = [
        asyncio.create_task(cache.get("app", repo.get_by_client_id)) for _ in range(5)
    ]
    await _started(tasks)
    repo.release.set()

    assert await asyncio.gather(*tasks) == [None] * 5
    assert repo.reads == 1
    assert await cache.get("app", repo.get_by_client_id) is None
    assert repo.reads == 2


async def test_when_the_shared_read_fails_each_waiter_reads_alone():
    repo = SlowRepository(client(), fail=True)
    cache = ClientCache(ttl=5)
    tasks = [
        asyncio.create_task(cache.get("app", repo.get_by_client_id)) for _ in range(4)
    ]
    await _started(tasks)
    repo.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(results[0], ConnectionError)  # the reader's own error
    assert [c.secret_hash for c in results[1:]] == ["h1"] * 3
    assert repo.reads == 4


async def test_a_cancelled_reader_leaves_the_waiters_to_read():
    repo = SlowRepository(client())
    cache = ClientCache(ttl=5)
    reader = asyncio.create_task(cache.get("app", repo.get_by_client_id))
    await _started([reader])
    waiters = [
        asyncio.create_task(cache.get("app", repo.get_by_client_id)) for _ in range(3)
    ]
    await _started(waiters)
    reader.cancel()
    await asyncio.sleep(0)
    repo.release.set()
    found = await asyncio.gather(*waiters)

    assert reader.cancelled()
    assert [c.secret_hash for c in found] == ["h1"] * 3
    # They read on their own, and the next request finds the cached entry.
    assert repo.reads == 4
    await cache.get("app", repo.get_by_client_id)
    assert repo.reads == 4


async def test_a_cancelled_waiter_does_not_cancel_the_shared_read():
    repo = SlowRepository(client())
    cache = ClientCache(ttl=5)
    reader = asyncio.create_task(cache.get("app", repo.get_by_client_id))
    await _started([reader])
    waiter = asyncio.create_task(cache.get("app", repo.get_by_client_id))
    await _started([waiter])
    waiter.cancel()
    await asyncio.sleep(0)
    repo.release.set()

    assert (await reader).secret_hash == "h1"
    assert waiter.cancelled()
    assert repo.reads == 1
