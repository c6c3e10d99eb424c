"""A minimal HTTP/1.1 keep-alive client: one connection, one request at a time.

The load generator shares two cores with the server it measures, so every
microsecond it spends per request is taken from the server. A general client
(httpx2) builds request objects, header containers and URL objects for each
call; this one writes pre-built request bytes and parses the answer with
httptools' C parser (already installed with uvicorn[standard]), which costs a
fraction of that. It speaks plain HTTP to one host and does nothing else:
no TLS, no redirects, no chunked request bodies, no pipelining.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import cast

import httptools

MAX_IDLE = 2.0  # seconds a kept-alive connection may idle before we replace it


class HTTPClientError(Exception):
    """The connection failed, closed early or the answer was not HTTP."""


@dataclass(slots=True)
class Response:
    status: int
    body: bytes


def build_request(
    method: str,
    path: str,
    host: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    """The exact bytes of one request, built once and reused for every send."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Protocol(asyncio.Protocol):
    """Feeds bytes to httptools and resolves the waiting request's future."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.chunks: list[bytes] = []
        self.keep_alive = True
        self.closed = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HTTPClientError(f"bad response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HTTPClientError(f"connection lost: {exc or 'closed by server'}"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        body = b"".join(self.chunks)
        self.chunks = []
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self.parser.get_status_code(), body))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Connection:
    """One keep-alive connection that reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._protocol: _Protocol | None = None
        # When the request in flight was sent (monotonic), for the watchdog.
        self.sent_at: float | None = None
        self.idle_since = float("inf")

    async def request(self, raw: bytes) -> Response:
        protocol = self._protocol
        if (
            protocol is None
            or protocol.closed
            or not protocol.keep_alive
            or time.monotonic() - self.idle_since > MAX_IDLE
        ):
            # A connection idle for a while may be closing on the server's side
            # right now (uvicorn drops idle ones after 5 s): a request written
            # into it would fail for nothing, and a POST cannot be retried.
            protocol = await self._connect()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        protocol.waiter = waiter
        assert protocol.transport is not None
        self.sent_at = time.monotonic()
        protocol.transport.write(raw)
        try:
            return await waiter
        except BaseException:
            # Whatever was in flight on this connection is now unknowable.
            self.close()
            raise
        finally:
            self.sent_at = None
            self.idle_since = time.monotonic()

    async def _connect(self) -> _Protocol:
        self.close()
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        except OSError as exc:
            raise HTTPClientError(f"cannot connect: {exc}") from None
        self._protocol = protocol
        return protocol

    def abort(self, reason: str) -> None:
        """Fail the request in flight (used by the timeout watchdog)."""
        protocol = self._protocol
        if protocol is not None:
            protocol._fail(HTTPClientError(reason))
        self.close()

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
