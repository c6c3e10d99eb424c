"""A database outage is a 503 (never a 500), and an open breaker answers at once."""

import time
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from authserver.api.state import app_state
from authserver.core.config import Settings
from authserver.db.breaker import DatabaseBreaker, install_breaker
from authserver.db.session import create_engine, create_session_factory
from tests.api.helpers import TOKEN_URL, assert_oauth_error, password_grant, tokens
from tests.factories import make_client, make_user

THRESHOLD = 3
FORM = {"grant_type": "password", "username": "alice", "password": "irrelevant1"}
AUTH = ("some-client", "some-secret")


def assert_unavailable(response) -> None:
    assert_oauth_error(response, 503, "temporarily_unavailable")
    assert int(response.headers["retry-after"]) >= 1


@pytest.fixture
async def unreachable_db(
    app: FastAPI, settings: Settings, tmp_path
) -> AsyncIterator[DatabaseBreaker]:
    """Point the running app at a database that is not there, with a new breaker."""
    if settings.is_sqlite:
        url = f"sqlite+aiosqlite:///{tmp_path}/no-such-dir/db.sqlite"
    else:  # nothing listens on port 1: asyncpg gets a bare ConnectionRefusedError
        url = make_url(settings.database_url).set(port=1).render_as_string(False)
    engine = create_engine(settings.model_copy(update={"database_url": url}))
    breaker = DatabaseBreaker(failure_threshold=THRESHOLD, recovery_timeout=30)
    install_breaker(engine, breaker)
    saved = app_state(app).session_factory, app_state(app).db_breaker
    app_state(app).session_factory = create_session_factory(engine)
    app_state(app).db_breaker = breaker
    try:
        yield breaker
    finally:
        app_state(app).session_factory, app_state(app).db_breaker = saved
        await engine.dispose()


def trip(breaker: DatabaseBreaker, failures: int) -> None:
    """Open `breaker` as a run of refused connections would."""
    for _ in range(failures):
        breaker.record_failure(ConnectionRefusedError(111, "refused"))
    assert breaker.state == "open"


async def test_connection_failures_are_503_and_then_refused_at_once(
    api, unreachable_db
):
    for _ in range(THRESHOLD):
        response = await api.post(TOKEN_URL, data=FORM, auth=AUTH)
        assert_unavailable(response)
    assert unreachable_db.state == "open"

    started = time.perf_counter()
    response = await api.post(TOKEN_URL, data=FORM, auth=AUTH)
    elapsed = time.perf_counter() - started

    assert_unavailable(response)
    assert response.json()["error_description"]
    assert elapsed < 0.5
    assert int(response.headers["retry-after"]) <= 30


async def test_discovery_and_jwks_do_not_need_the_database(api, unreachable_db):
    for _ in range(THRESHOLD):
        await api.post(TOKEN_URL, data=FORM, auth=AUTH)

    for path in (
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/health/live",
    ):
        assert (await api.get(path)).status_code == 200, path


async def test_readiness_says_which_check_failed(api, unreachable_db):
    response = await api.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["signing_key"] == "ok"
    assert body["checks"]["database"].startswith("unavailable")


async def test_open_breaker_then_recovery(api, app, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    breaker: DatabaseBreaker = app_state(app).db_breaker
    trip(breaker, app_state(app).settings.db_breaker_failure_threshold)
    try:
        refused = await password_grant(api, client, user.username)
        assert_unavailable(refused)
        ready = await api.get("/health/ready")
        assert ready.status_code == 503
        assert "breaker open" in ready.json()["checks"]["database"]
    finally:
        breaker.record_success()  # what the first good query after recovery does

    assert breaker.state == "closed"
    tokens(await password_grant(api, client, user.username))
