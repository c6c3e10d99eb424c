"""No bcrypt runs while a transaction (or SQLite's write lock) is held.

Each request that hashes or verifies a password runs alone, and each hash
first asks the database from outside whether anything holds it (tests/dbprobe).
A hash inside a transaction would keep the one SQLite writer or a pooled
PostgreSQL connection for its whole run, and longer while it waits its turn
behind a login storm.
"""

from collections.abc import AsyncIterator

import httpx2
import pytest

from authserver.core.config import Settings
from authserver.main import create_app
from tests.api.helpers import (
    ME_URL,
    USERS_URL,
    bearer,
    password_grant,
    tokens,
    user_tokens,
)
from tests.conftest import TEST_ISSUER
from tests.dbprobe import HashWatch, watch_hashes
from tests.factories import DEFAULT_PASSWORD, make_client, make_user

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch, database_url: str) -> HashWatch:
    return watch_hashes(monkeypatch, database_url)


def assert_never_held(watch: HashWatch, *expected: str) -> None:
    assert watch.calls == list(expected)
    assert watch.held == []


async def test_password_grant_hashes_outside_transactions(api, session_factory, watch):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    watch.calls.clear()

    tokens(await password_grant(api, client, user.username))
    await password_grant(api, client, user.username, password="wrong password")
    await password_grant(api, client, "nobody-here")

    # The unknown user costs a verify too (after the dummy hash is made once).
    assert watch.calls[:2] == ["verify", "verify"]
    assert set(watch.calls[2:]) <= {"hash", "verify"}
    assert watch.held == []


async def test_password_change_hashes_outside_transactions(api, session_factory, watch):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    headers = bearer((await user_tokens(api, client, user.username))["access_token"])
    # A failure on record: the right password then writes before the new hash.
    await password_grant(api, client, user.username, password="wrong password")
    watch.calls.clear()

    body = {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}
    changed = await api.post(f"{ME_URL}/password", json=body, headers=headers)

    assert changed.status_code == 204, changed.text
    assert_never_held(watch, "verify", "hash")


async def test_admin_user_operations_hash_outside_transactions(
    api, session_factory, watch
):
    client = await make_client(session_factory, scopes=("profile", "admin"))
    admin = await make_user(session_factory, is_admin=True)
    body = await user_tokens(api, client, admin.username, scope="admin profile")
    headers = bearer(body["access_token"])
    watch.calls.clear()

    created = await api.post(
        USERS_URL,
        json={"username": "fresh-user", "password": DEFAULT_PASSWORD},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    reset = await api.post(
        f"{USERS_URL}/{created.json()['id']}/password",
        json={"password": NEW_PASSWORD},
        headers=headers,
    )

    assert reset.status_code == 204, reset.text
    assert_never_held(watch, "hash", "hash")


@pytest.fixture
async def open_api(
    settings: Settings, clean_db: None
) -> AsyncIterator[httpx2.AsyncClient]:
    """An app with self-registration on."""
    app = create_app(settings.model_copy(update={"allow_self_registration": True}))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(
            transport=transport, base_url=TEST_ISSUER
        ) as http:
            yield http


async def test_self_registration_hashes_outside_transactions(open_api, watch):
    created = await open_api.post(
        USERS_URL, json={"username": "signed-up", "password": DEFAULT_PASSWORD}
    )

    assert created.status_code == 201, created.text
    assert_never_held(watch, "hash")
