"""POST /oauth2/token, a fast path of the request pipeline (api/pipeline.py).

The token endpoint is the server's hot path: every login, refresh and client
token goes through it. FastAPI's router and dependency injection cost about
as much as signing the access token itself (see docs/benchmarks.md), so the
dispatcher hands this one route straight to `TokenEndpoint`. The pipeline's
layers have already bound the request id and origin, capped the body and
will write the access line; this handler parses, runs the grant and answers
through the one error renderer (`render_error`: OAuth errors, 503 for a
database outage or unreadable signing keys, a logged 500 for a bug).

The route in `v1/token.py` documents the endpoint in OpenAPI and answers
through `respond` too, so the two cannot drift apart.
"""

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from authserver.api.errors import render_error
from authserver.api.oauth_wire import (
    client_credentials,
    parse_oauth_form,
    validate_oauth_form,
)
from authserver.api.state import AppState
from authserver.core.exceptions import NO_STORE, InvalidRequestError
from authserver.schemas.token import TokenForm
from authserver.services.grants import exchange
from authserver.services.grants.common import GrantContext

TOKEN_PATH = "/oauth2/token"
JSON = "application/json"


class TokenEndpoint:
    """The token endpoint as a bare ASGI app over the app's shared state."""

    def __init__(self, state: AppState) -> None:
        # The session factory appears in the state at start-up.
        self.state = state

    @staticmethod
    def route(scope: Scope) -> str | None:
        if scope["path"] == TOKEN_PATH and scope["method"] == "POST":
            return TOKEN_PATH
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        """The token response, or the error response, for one request."""
        try:
            body = await _read_body(request)
            params = parse_oauth_form(request.headers.get("content-type"), body)
            form = validate_oauth_form(TokenForm, params)
            credentials = client_credentials(request.headers.get("authorization"), form)
            ctx = self._grant_context()
            async with ctx.uow:
                answer = await exchange(form, credentials, ctx)
        except Exception as exc:  # every failure gets the registered handlers' answer
            return await render_error(request, exc)
        return Response(
            answer.model_dump_json(exclude_none=True),
            media_type=JSON,
            headers=NO_STORE,
        )

    def _grant_context(self) -> GrantContext:
        state = self.state
        settings = state.settings
        now = state.clock()
        return GrantContext(
            uow=state.unit_of_work(),
            rotation_batcher=state.rotation_batcher,
            client_cache=state.client_cache,
            tokens=state.tokens.for_request(now),  # 503 now if the keys are unusable
            hasher=state.hasher,
            refresh_ttl=settings.refresh_token_ttl,
            refresh_max_lifetime=settings.refresh_token_max_lifetime,
            retry_window=settings.refresh_retry_window,
            lock_policy=state.lock_policy,
            now=now,
        )


async def _read_body(request: Request) -> bytes:
    """The body (the pipeline's body-size layer cuts off one that grows too big)."""
    try:
        return await request.body()
    except ClientDisconnect:
        raise InvalidRequestError("the request body was cut off") from None
