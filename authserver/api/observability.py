"""Request ids, origin, the access-log line and the HTTP metrics: one pure ASGI
layer, the outermost of the pipeline (api/pipeline.py)."""

import logging
import re
import time
from collections.abc import Callable
from functools import lru_cache

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.core import metrics
from authserver.core.context import (
    bind_request,
    client_ip,
    current_request,
    new_request_id,
    reset_request,
)

logger = logging.getLogger("authserver.access")

# A caller's id is kept only when it is short and cannot smuggle anything into
# a log line or a header: letters, digits and ._- (UUIDs, ULIDs, trace ids).
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
TOKEN_ROUTE = "/oauth2/token"
# Probes and scrapes arrive every few seconds; their lines go to DEBUG.
QUIET_ROUTES = frozenset(
    {
        "/health/live",
        "/health/ready",
        "/metrics",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    }
)
MAX_LOGGED_PATH = 256
# Any token is a valid HTTP method: others are counted together, so a client
# cannot add metric series at will.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
OTHER_METHOD = "other"


class RequestContextMiddleware:
    """Give each request an id (echoed as X-Request-ID) and its origin (the
    client's address, for audit records; BearerAuth adds who), then count it
    and log one line for it."""

    def __init__(
        self, app: ASGIApp, fast_route: Callable[[Scope], str | None] | None = None
    ) -> None:
        self.app = app
        # The route label of a request a fast path answers (the router puts
        # its own in the scope), known before any layer may answer instead.
        self.fast_route = fast_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or new_request_id()
        token = bind_request(
            request_id,
            ip=peer_ip(scope),
            route=self.fast_route(scope) if self.fast_route else None,
        )
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Nothing inside sets this header: append it, no header scan.
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            # The server logs the traceback after this returns: leave the
            # request id bound so that line carries it too (uvicorn runs each
            # request in its own task, so nothing leaks).
            finish_request(scope, status, started)
            raise
        finish_request(scope, status, started)
        reset_request(token)


def incoming_request_id(scope: Scope) -> str | None:
    """The caller's X-Request-ID when it is sane, else None."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _SAFE_REQUEST_ID.fullmatch(candidate) else None
    return None


def peer_ip(scope: Scope) -> str | None:
    """The client's IP address (from X-Forwarded-For when uvicorn trusts the
    proxy), when it is one."""
    client = scope.get("client")
    return client_ip(client[0]) if client else None


def route_template(scope: Scope) -> str:
    """The matched route's path template: a bounded label, unlike the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else metrics.UNMATCHED_ROUTE


@lru_cache(maxsize=1024)  # bounded label sets: method, route template, status
def _http_series(method: str, route: str, status: int) -> tuple[Histogram, Counter]:
    """The latency histogram and request counter of one label set, looked up
    once instead of on every request."""
    if method not in HTTP_METHODS:
        method = OTHER_METHOD
    return (
        metrics.HTTP_LATENCY.labels(method=method, route=route),
        metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
    )


def finish_request(scope: Scope, status: int, started: float) -> None:
    """Record a served request: metrics, then the access line."""
    duration = time.perf_counter() - started
    method = scope["method"]
    context = current_request()
    route = (context.route if context else None) or route_template(scope)
    latency, requests = _http_series(method, route, status)
    latency.observe(duration)
    requests.inc()
    if route == TOKEN_ROUTE and status >= 400 and context and context.error:
        metrics.TOKEN_ERRORS.labels(error=context.error).inc()
    if route in QUIET_ROUTES and status < 500:
        level = logging.DEBUG
    else:
        level = logging.WARNING if status >= 500 else logging.INFO
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        "http_request",
        extra={
            "method": method,
            "path": scope["path"][:MAX_LOGGED_PATH],
            "route": route,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
            "client_id": context.client_id if context else None,
            **(
                {"grant_type": context.grant_type}
                if context and context.grant_type
                else {}
            ),
            "error": context.error if context else None,
            "client_ip": peer_ip(scope),
        },
    )
