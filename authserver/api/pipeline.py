"""The request pipeline: one copy of each cross-cutting layer around a dispatcher.

    RequestContextMiddleware   request id, origin, access line, HTTP metrics
      BodySizeLimitMiddleware  413 by Content-Length or by counting
        Dispatcher             a fast path, or FastAPI's router stack

The token endpoint and the public documents are fast paths: bare ASGI
handlers that skip FastAPI's router and dependency injection, which would
cost as much as the answer itself (see docs/benchmarks.md). Everything every
request needs happens in the layers, so a fast path and a route cannot drift
apart on it.
"""

from collections.abc import Sequence
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.api.middleware import BodySizeLimitMiddleware
from authserver.api.observability import RequestContextMiddleware


class FastPath(Protocol):
    """A bare ASGI handler for a few (method, path) pairs."""

    def route(self, scope: Scope) -> str | None:
        """The route label (for metrics and the access line) of an HTTP
        request this handler answers; None for any other."""
        ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class Dispatcher:
    def __init__(self, framework: ASGIApp, fast_paths: Sequence[FastPath]) -> None:
        self.framework = framework
        self.fast_paths = tuple(fast_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for fast_path in self.fast_paths:
                if fast_path.route(scope) is not None:
                    await fast_path(scope, receive, send)
                    return
        await self.framework(scope, receive, send)

    def fast_route(self, scope: Scope) -> str | None:
        """The route label of an HTTP request a fast path answers, else None."""
        for fast_path in self.fast_paths:
            route = fast_path.route(scope)
            if route is not None:
                return route
        return None


def build_pipeline(dispatcher: Dispatcher, *, max_body_bytes: int) -> ASGIApp:
    """The layers every request goes through, around the dispatcher."""
    return RequestContextMiddleware(
        BodySizeLimitMiddleware(dispatcher, max_bytes=max_body_bytes),
        fast_route=dispatcher.fast_route,
    )
