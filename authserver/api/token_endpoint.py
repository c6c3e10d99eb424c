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
from authserver.api.middleware import scope_header
from authserver.api.oauth_wire import (
    client_credentials,
    parse_oauth_form,
    validate_oauth_form,
)
from authserver.api.state import AppState
from authserver.core.exceptions import NO_STORE, InvalidRequestError
from authserver.schemas.token import TokenForm, TokenResponse
from authserver.services.grants import exchange
from authserver.services.grants.common import GrantContext

TOKEN_PATH = "/oauth2/token"
JSON = "application/json"
# A success's headers but its length: one list, encoded once.
SUCCESS_HEADERS = [
    (b"content-type", JSON.encode()),
    *((name.lower().encode(), value.encode()) for name, value in NO_STORE.items()),
]


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
        # Straight on ASGI messages: Starlette's Request and Response objects
        # are made only for an error's answer (the registered handlers').
        try:
            body = await _read_body(receive)
            payload = await self.answer(
                scope_header(scope, b"content-type"),
                scope_header(scope, b"authorization"),
                body,
            )
        except Exception as exc:  # every failure gets the registered handlers' answer
            response = await render_error(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    *SUCCESS_HEADERS,
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def respond(self, request: Request) -> Response:
        """The same answer as a Starlette response (for the documented route)."""
        try:
            try:
                body = await request.body()
            except ClientDisconnect:
                raise InvalidRequestError("the request body was cut off") from None
            payload = await self.answer(
                request.headers.get("content-type"),
                request.headers.get("authorization"),
                body,
            )
        except Exception as exc:
            return await render_error(request, exc)
        return Response(payload, media_type=JSON, headers=NO_STORE)

    async def answer(
        self, content_type: str | None, authorization: str | None, body: bytes
    ) -> bytes:
        """The success's JSON body; an exception for everything else."""
        params = parse_oauth_form(content_type, body)
        form = validate_oauth_form(TokenForm, params)
        credentials = client_credentials(authorization, form)
        ctx = self._grant_context()
        async with ctx.uow:
            answer: TokenResponse = await exchange(form, credentials, ctx)
        return answer.model_dump_json(exclude_none=True).encode()

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


async def _read_body(receive: Receive) -> bytes:
    """The body (the pipeline's body-size layer cuts off one that grows too big)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequestError("the request body was cut off")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
