"""GET /health/live and /health/ready."""

from authserver.api.state import app_state
from authserver.api.v1 import health
from authserver.services.keystore import KeyStoreError


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
