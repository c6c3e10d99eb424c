"""The body-size layer of the request pipeline (api/pipeline.py)."""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authserver.core.context import annotate_request
from authserver.core.exceptions import RequestTooLargeError

TOO_LARGE = json.dumps(
    {"error": "invalid_request", "error_description": "request body too large"}
).encode()


class BodySizeLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413, by Content-Length or by counting.

    A body that lies about its length is cut off mid-stream: the app's read
    raises RequestTooLargeError, which the error handler renders as 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = content_length(scope)
        if declared is not None and declared > self.max_bytes:
            annotate_request(error="invalid_request")
            await reject_too_large(send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLargeError("request body too large")
            return message

        await self.app(scope, limited_receive, send)


def content_length(scope: Scope) -> int | None:
    value = scope_header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def scope_header(scope: Scope, name: bytes) -> str | None:
    """The first value of a header (a lower-case name), as Starlette's
    `headers.get` reads it, without making a Request."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def reject_too_large(send: Send) -> None:
    """413 without reading the body, and close: the unread body must not be
    taken for the next request on this connection."""
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(TOO_LARGE)).encode()),
                (b"cache-control", b"no-store"),
                (b"pragma", b"no-cache"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE})
