"""POST /oauth2/token, answered ahead of the framework stack.

The token endpoint is the server's hot path: every login, refresh and client
token goes through it. FastAPI's middleware stack, router and dependency
injection cost about as much as signing the access token itself (see
docs/benchmarks.md), so the app hands this one route straight to
`TokenEndpoint`, which keeps what the stack gives every request:

- the request id, bound for every log line and echoed in X-Request-ID;
- the body cap (413, by Content-Length or by counting) and the field caps;
- the one error renderer (`render_error`: OAuth errors, 503 for a database
  outage, a logged 500 for a bug);
- the access line and the HTTP metrics (`finish_request`).

The route in `v1/token.py` documents the endpoint in OpenAPI and answers
through `respond` too, so the two cannot drift apart.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.datastructures import State
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from authserver.api.deps import (
    client_credentials,
    parse_oauth_form,
    validate_oauth_form,
)
from authserver.api.errors import NO_STORE, render_error
from authserver.api.middleware import content_length, reject_too_large
from authserver.api.observability import (
    finish_request,
    incoming_request_id,
    peer_ip,
)
from authserver.core.config import Settings
from authserver.core.context import Origin, current_origin
from authserver.core.exceptions import InvalidRequestError, RequestTooLargeError
from authserver.core.logging import (
    annotate_request,
    bind_request,
    new_request_id,
    reset_request,
)
from authserver.crud.user import LockPolicy
from authserver.schemas.token import TokenForm
from authserver.services.grants import exchange
from authserver.services.grants.common import GrantContext

TOKEN_PATH = "/oauth2/token"
JSON = "application/json"


def utc_now() -> datetime:
    return datetime.now(UTC)


class TokenEndpoint:
    """The token endpoint as a bare ASGI app over the app's shared state."""

    def __init__(self, state: State) -> None:
        # The app's state: the session factory appears there at start-up.
        self.state = state
        settings: Settings = state.settings
        self.settings = settings
        self.max_body_bytes = settings.max_body_bytes
        self.lock_policy: LockPolicy = state.lock_policy
        # The grants' idea of "now"; tests move it to cross expiry times.
        self.clock: Callable[[], datetime] = utc_now

    @staticmethod
    def handles(scope: Scope) -> bool:
        if scope["type"] != "http":
            return False
        path: str = scope["path"]
        return path == TOKEN_PATH and scope["method"] == "POST"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = incoming_request_id(scope) or new_request_id()
        bound = bind_request(request_id)
        status = 500  # what the access line says if sending fails
        try:
            declared = content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                annotate_request(error="invalid_request")
                status = 413
                await reject_too_large(send, [(b"x-request-id", request_id.encode())])
                return
            response = await self.respond(Request(scope, receive))
            response.headers["X-Request-ID"] = request_id
            status = response.status_code
            await response(scope, receive, send)
        finally:
            finish_request(scope, status, started, route=TOKEN_PATH)
            reset_request(bound)

    async def respond(self, request: Request) -> Response:
        """The token response, or the error response, for one request."""
        try:
            body = await self._read_body(request)
            params = parse_oauth_form(request.headers.get("content-type"), body)
            form = validate_oauth_form(TokenForm, params)
            credentials = client_credentials(request, form)
            ctx = self._grant_context(request)
            try:
                answer = await exchange(form, credentials, ctx)
            finally:
                # A session holds a connection only inside a transaction; most
                # grants end theirs, and a cached client's one never begins.
                await ctx.release()
        except Exception as exc:  # every failure gets the registered handlers' answer
            return await render_error(request, exc)
        return Response(
            answer.model_dump_json(exclude_none=True),
            media_type=JSON,
            headers=NO_STORE,
        )

    async def _read_body(self, request: Request) -> bytes:
        """The body, refused as soon as it grows past the cap (chunked bodies)."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise RequestTooLargeError("request body too large")
                chunks.append(chunk)
        except ClientDisconnect:
            raise InvalidRequestError("the request body was cut off") from None
        return b"".join(chunks)

    def _grant_context(self, request: Request) -> GrantContext:
        settings = self.settings
        state = self.state
        current_origin.set(Origin(ip=peer_ip(request.scope)))
        return GrantContext(
            session_factory=state.session_factory,
            rotation_batcher=state.rotation_batcher,
            client_cache=state.client_cache,
            tokens=state.tokens,
            hasher=state.hasher,
            refresh_ttl=settings.refresh_token_ttl,
            refresh_max_lifetime=settings.refresh_token_max_lifetime,
            retry_window=settings.refresh_retry_window,
            lock_policy=self.lock_policy,
            now=self.clock(),
        )
