"""GET /metrics: Prometheus text with the token, error, latency and breaker series."""

import os
import subprocess
import sys
from pathlib import Path

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from authserver.main import create_app
from tests.api.helpers import password_grant, refresh_grant, tokens
from tests.factories import make_client, make_user


async def scrape(api: httpx2.AsyncClient) -> dict[tuple[str, frozenset], float]:
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_tokens_issued_and_errors_by_code(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    before = await scrape(api)

    tokens(await password_grant(api, client, user.username))
    await password_grant(api, client, user.username, password="wrong-password")
    await password_grant(api, client, user.username, password="wrong-password")
    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("authserver_tokens_issued_total", grant_type="password") == 1
    assert delta("authserver_token_errors_total", error="invalid_grant") == 2
    latency = "authserver_http_request_duration_seconds_count"
    assert delta(latency, method="POST", route="/oauth2/token") == 3
    assert (
        delta(
            "authserver_http_requests_total",
            method="POST",
            route="/oauth2/token",
            status="400",
        )
        == 2
    )


async def test_refresh_token_reuse_is_counted(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    first = tokens(await password_grant(api, client, user.username))["refresh_token"]
    second = tokens(await refresh_grant(api, client, first))["refresh_token"]
    tokens(await refresh_grant(api, client, second))  # the child of `first` is used
    before = await scrape(api)

    replay = await refresh_grant(api, client, first)

    after = await scrape(api)
    assert replay.status_code == 400
    name = "authserver_refresh_token_reuse_detected_total"
    assert value(after, name) - value(before, name) == 1


async def test_routes_are_templates_not_raw_paths(api):
    for n in range(3):
        await api.get(f"/no/such/thing/{n}")

    samples = await scrape(api)

    routes = {dict(labels).get("route") for (_, labels) in samples}
    assert "unmatched" in routes
    assert not any(route and route.startswith("/no/such") for route in routes)


async def test_unknown_methods_share_one_series(api):
    before = await scrape(api)
    for n in range(3):
        await api.request(f"BREW{n}", "/no/such/thing")

    after = await scrape(api)

    methods = {dict(labels).get("method") for (_, labels) in after}
    assert not any(method and method.startswith("BREW") for method in methods)
    latency = "authserver_http_request_duration_seconds_count"
    other = {"method": "other", "route": "unmatched"}
    assert value(after, latency, **other) - value(before, latency, **other) == 3


async def test_breaker_state_is_exported(api):
    samples = await scrape(api)

    state = "authserver_db_breaker_state"
    assert value(samples, state, state="closed") == 1
    assert value(samples, state, state="open") == 0
    assert value(samples, state, state="half_open") == 0


async def test_metrics_can_be_turned_off(settings):
    app = create_app(settings.model_copy(update={"metrics_enabled": False}))
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://x") as http:
        assert (await http.get("/metrics")).status_code == 404


WORKER = """
from authserver.core import metrics
metrics.TOKENS_ISSUED.labels(grant_type="password").inc({n})
metrics.DB_BREAKER_STATE.labels(state="open").set({open})
if {forget}:
    metrics.forget_this_process()
"""
SCRAPER = """
import sys
from authserver.core.metrics import render
sys.stdout.buffer.write(render()[0])
"""


def test_multiprocess_mode_merges_every_worker(tmp_path: Path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def python(code: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, capture_output=True
        ).stdout.decode()

    issued, state = "authserver_tokens_issued_total", "authserver_db_breaker_state"
    python(WORKER.format(n=2, open=0, forget=False))
    python(WORKER.format(n=3, open=1, forget=True))  # stopped cleanly
    samples = parse(python(SCRAPER))
    assert value(samples, issued, grant_type="password") == 5
    assert value(samples, state, state="open") == 0

    python(WORKER.format(n=1, open=1, forget=False))
    samples = parse(python(SCRAPER))
    assert value(samples, issued, grant_type="password") == 6
    # Worst state over the live workers: one of them has its breaker open.
    assert value(samples, state, state="open") == 1
