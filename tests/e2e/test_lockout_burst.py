"""Guesses sent all at once meet the same lock as guesses sent one by one.

A real uvicorn server gets BURST password guesses for one account at the same
moment, at the token endpoint and at the password change. Whatever order they
reach the database in, at most the lock threshold of them are evaluated; every
other one is refused with the answer a wrong password gets, after the same
bcrypt work (a verify against the account's own hash), and the account ends
locked.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest

from authserver.core.config import Settings
from authserver.crud.audit import AuditRepository
from authserver.crud.user import UserRepository
from authserver.db.session import SessionFactory
from authserver.models import User
from authserver.services.passwords import PasswordHasher
from tests import factories
from tests.factories import DEFAULT_PASSWORD, make_client, make_user
from tests.live import free_socket, live_server, live_settings

BURST = 40
THRESHOLD = 5
# Slow enough that the whole burst is in flight before the first hash ends.
ROUNDS = 8
WRONG = "not the password"
NEW_PASSWORD = "a brand new passphrase"


@dataclass
class Server:
    url: str
    settings: Settings


@pytest.fixture
async def server(
    database_url: str, tmp_path: Path, clean_db: None
) -> AsyncIterator[Server]:
    sock = free_socket()
    settings = live_settings(
        database_url,
        tmp_path / "keys",
        sock,
        bcrypt_rounds=ROUNDS,
        lockout_threshold=THRESHOLD,
        # Far longer than the test: no lock may end (and admit more) meanwhile.
        lockout_base=timedelta(minutes=10),
        lockout_max=timedelta(minutes=10),
    )
    async with live_server(settings, sock) as url:
        yield Server(url, settings)


@pytest.fixture
def verified_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stored hash each password verify of the server ran against."""
    seen: list[str] = []
    verify = PasswordHasher.verify

    async def counting(
        self: PasswordHasher, password: str, password_hash: str
    ) -> tuple[bool, str | None]:
        seen.append(password_hash)
        return await verify(self, password, password_hash)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return seen


async def at_once(
    count: int, request: Callable[[httpx2.AsyncClient, int], Awaitable[httpx2.Response]]
) -> list[httpx2.Response]:
    """`count` requests, each on its own connection, released together."""
    clients = [httpx2.AsyncClient(timeout=60) for _ in range(count)]
    try:
        return await asyncio.gather(
            *(request(http, index) for index, http in enumerate(clients))
        )
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))


async def login(
    http: httpx2.AsyncClient,
    server: Server,
    client: factories.TestClient,
    user: User,
    pw: str,
) -> httpx2.Response:
    return await http.post(
        f"{server.url}/oauth2/token",
        data={"grant_type": "password", "username": user.username, "password": pw},
        auth=client.basic_auth,
    )


async def stored(session_factory: SessionFactory, user: User) -> User:
    async with session_factory() as session:
        found = await UserRepository(session).get(user.id)
    assert found is not None
    return found


async def outcomes(session_factory: SessionFactory, user: User) -> Counter[str]:
    """The audit trail of the account: each login_failed by its reason."""
    async with session_factory() as session:
        events = await AuditRepository(session).list(subject=str(user.id), limit=500)
    return Counter(
        (
            (e.detail or {}).get("reason", e.event)
            if e.event == "login_failed"
            else e.event
        )
        for e in events
    )


def assert_locked(user: User) -> None:
    assert user.failed_logins == THRESHOLD
    assert user.locked_until is not None and user.locked_until > datetime.now(UTC)


async def test_burst_of_guesses_at_the_token_endpoint_meets_the_lock(
    server: Server, session_factory: SessionFactory, verified_hashes: list[str]
) -> None:
    client = await make_client(session_factory)
    user = await make_user(session_factory, hasher=PasswordHasher(ROUNDS))
    right = BURST - 1  # the right password, sent with the wrong ones

    answers = await at_once(
        BURST,
        lambda http, i: login(
            http, server, client, user, DEFAULT_PASSWORD if i == right else WRONG
        ),
    )

    refusals = [a for i, a in enumerate(answers) if a.status_code != 200]
    assert {(a.status_code, a.json()["error"]) for a in refusals} == {
        (400, "invalid_grant")
    }
    assert len({a.content for a in refusals}) == 1  # the lock shows in no answer
    seen = await outcomes(session_factory, user)
    # Every guess cost one verify against the account's own hash.
    assert verified_hashes.count(user.password_hash) == BURST
    if answers[right].status_code == 200:
        # The right password was among the counted guesses: it logs in and
        # forgives the failures counted before it, as one by one it would.
        assert seen["login_succeeded"] == 1
        assert seen["wrong_password"] <= 2 * THRESHOLD - 1
    else:
        assert seen["login_succeeded"] == 0
        assert seen["wrong_password"] == THRESHOLD
        assert_locked(await stored(session_factory, user))
    assert seen["wrong_password"] + seen["locked"] + seen["login_succeeded"] == BURST


async def test_burst_of_wrong_guesses_locks_and_refuses_the_right_one(
    server: Server, session_factory: SessionFactory, verified_hashes: list[str]
) -> None:
    client = await make_client(session_factory)
    user = await make_user(session_factory, hasher=PasswordHasher(ROUNDS))

    answers = await at_once(
        BURST, lambda http, _: login(http, server, client, user, WRONG)
    )

    assert {(a.status_code, a.json()["error"]) for a in answers} == {
        (400, "invalid_grant")
    }
    seen = await outcomes(session_factory, user)
    assert seen["wrong_password"] == THRESHOLD
    assert seen["locked"] == BURST - THRESHOLD
    assert verified_hashes.count(user.password_hash) == BURST
    assert_locked(await stored(session_factory, user))
    async with httpx2.AsyncClient(timeout=60) as http:
        after = await login(http, server, client, user, DEFAULT_PASSWORD)
    assert after.status_code == 400 and after.content == answers[0].content


async def test_burst_of_current_passwords_meets_the_same_lock(
    server: Server, session_factory: SessionFactory, verified_hashes: list[str]
) -> None:
    client = await make_client(session_factory)
    user = await make_user(session_factory, hasher=PasswordHasher(ROUNDS))
    async with httpx2.AsyncClient(timeout=60) as http:
        token = (await login(http, server, client, user, DEFAULT_PASSWORD)).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    verified_hashes.clear()

    async def change(http: httpx2.AsyncClient, current: str) -> httpx2.Response:
        return await http.post(
            f"{server.url}/api/v1/users/me/password",
            json={"current_password": current, "new_password": NEW_PASSWORD},
            headers=headers,
        )

    answers = await at_once(BURST, lambda http, _: change(http, WRONG))

    assert {a.status_code for a in answers} == {422}
    assert len({a.content for a in answers}) == 1
    seen = await outcomes(session_factory, user)
    assert seen["wrong_password"] == THRESHOLD
    assert seen["locked"] == BURST - THRESHOLD
    assert verified_hashes.count(user.password_hash) == BURST
    assert_locked(await stored(session_factory, user))
    async with httpx2.AsyncClient(timeout=60) as http:
        right = await change(http, DEFAULT_PASSWORD)
    assert right.status_code == 422 and right.content == answers[0].content
    assert (await stored(session_factory, user)).password_hash == user.password_hash
