"""GET /health/live and /health/ready."""

import asyncio

import httpx2

from authserver.api.state import app_state
from authserver.api.v1 import health
from authserver.main import create_app
from authserver.services.keystore import MANIFEST, KeyStoreError
from tests.conftest import TEST_ISSUER, make_settings


async def test_live(api):
    response = await api.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


async def test_ready(api):
    response = await api.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "signing_key": "ok"},
    }
    assert response.headers["cache-control"] == "no-store"


async def test_not_ready_without_a_signing_key(api, app, monkeypatch):
    def no_keys(*_args: object) -> None:
        raise KeyStoreError("no active signing key in the key store")

    monkeypatch.setattr(app_state(app).keystore, "view", no_keys)

    response = await api.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "signing_key": "error: KeyStoreError",
    }


async def test_a_slow_database_is_not_ready_and_counts_as_a_failure(
    api, app, monkeypatch
):
    async def hangs(_factory: object, timeout: float) -> None:
        raise TimeoutError

    monkeypatch.setattr(health, "ping", hangs)
    breaker = app_state(app).db_breaker

    try:
        response = await api.get("/health/ready")
        failures = breaker.failure_count
    finally:
        breaker.record_success()

    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unavailable: no answer")
    assert failures == 1


async def test_probes_answer_head(api):
    for path in ("/health/live", "/health/ready"):
        response = await api.head(path)

        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store"


async def test_a_corrupt_manifest_makes_ready_fail_as_well_as_the_jwks(
    database_url, tmp_path
):
    # A realistic check interval: the store is re-read at most once a second,
    # so the JWKS request below is the one that finds the damage.
    settings = make_settings(
        database_url, tmp_path / "keys", keystore_check_interval=1.0
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url=TEST_ISSUER) as api:
            assert (await api.get("/health/ready")).status_code == 200
            (tmp_path / "keys" / MANIFEST).write_text('{"keys": [')
            await asyncio.sleep(1.1)

            jwks = await api.get("/.well-known/jwks.json")
            ready = await api.get("/health/ready")

    assert ready.status_code == 503  # on the request right after the JWKS's
    assert jwks.status_code == 503
    assert ready.json()["checks"]["signing_key"] == "error: KeyStoreError"
