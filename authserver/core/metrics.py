"""Prometheus metrics: every counter, histogram and gauge the server exports.

Defined here, in `core`, so that `db` (the breaker), `services` (grants) and
`api` (the middleware) can all update them without importing each other.

With several worker processes, set PROMETHEUS_MULTIPROC_DIR (an empty directory,
before the server starts): prometheus-client then keeps the values in files
there and `render()` merges every worker's, whichever worker is scraped.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

TOKENS_ISSUED = Counter(
    "authserver_tokens_issued",
    "Successful token responses, by grant type.",
    ["grant_type"],
)
TOKEN_ERRORS = Counter(
    "authserver_token_errors",
    "Error responses of the token endpoint, by OAuth error code.",
    ["error"],
)
REFRESH_TOKEN_REUSE = Counter(
    "authserver_refresh_token_reuse_detected",
    "Rotated refresh tokens presented again (each revokes its family).",
)
REFRESH_ROTATION_BATCH_SIZE = Histogram(
    "authserver_refresh_rotation_batch_size",
    "Refresh rotations written by one database statement (PostgreSQL).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
HTTP_REQUESTS = Counter(
    "authserver_http_requests",
    "HTTP requests served, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "authserver_http_request_duration_seconds",
    "Time from request start to response end, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_BREAKER_STATE = Gauge(
    "authserver_db_breaker_state",
    "Database circuit breaker: 1 for the current state (closed, open, half_open). "
    "With several workers, the maximum over live workers.",
    ["state"],
    multiprocess_mode="livemax",
)
DB_BREAKER_OPENED = Counter(
    "authserver_db_breaker_opened",
    "Times the database circuit breaker opened.",
)
DB_CONNECTION_FAILURES = Counter(
    "authserver_db_connection_failures",
    "Connection-level database failures (refused, reset, timed out).",
)

UNMATCHED_ROUTE = "unmatched"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> tuple[bytes, str]:
    """The exposition text and its content type (all workers' values merged)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def forget_this_process() -> None:
    """At a worker's clean exit: drop its live gauges from the merged view."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
