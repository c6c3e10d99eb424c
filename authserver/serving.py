"""The HTTP/1.1 protocol `authctl serve` runs uvicorn with: httptools, bounded.

uvicorn's httptools protocol (its fastest, STACK.md) sets no bound of its own:
on uvicorn 0.54 a 20 MB header and 100,000 header fields each got a 200, and a
connection that sends nothing, or its headers a byte at a time, stays open for
good (the keep-alive timer starts only after a response). h11 bounds the size
(`h11_max_incomplete_event_size`) but not the time, and is slower. So
`LimitedHttpToolsProtocol` adds the bounds, at the cost of a few integer
additions per read:

- request line plus headers: at most AUTH_HTTP_MAX_HEADER_BYTES, and at most
  AUTH_HTTP_MAX_HEADERS fields (431, connection closed, as soon as either is
  passed: an endless header is never buffered whole);
- the headers must be in within AUTH_HTTP_HEADER_TIMEOUT of the request's first
  byte, and the body within AUTH_HTTP_BODY_TIMEOUT of the headers (else 408,
  connection closed): slowloris holds a socket for seconds, not forever;
- a connection with no request in progress, new or kept alive, is closed after
  AUTH_HTTP_KEEP_ALIVE_TIMEOUT;

and `authctl serve` sets `limit_concurrency` (AUTH_HTTP_MAX_CONNECTIONS: 503
beyond it). What a single process cannot do — limit connections per client
address, rate-limit — belongs to the reverse proxy (docs/operations.md).
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from authserver.core.config import Settings, get_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout: float
    body_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "HttpLimits":
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            max_headers=settings.http_max_headers,
            header_timeout=settings.http_header_timeout.total_seconds(),
            body_timeout=settings.http_body_timeout.total_seconds(),
        )


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request we refuse."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded headers and read deadlines."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = HttpLimits.from_settings(get_settings())
        self._in_headers = False  # a request has begun, its headers are not in
        self._in_body = False  # its headers are in, its body is not
        # Of the request being read: what the parser handed over (line and
        # fields), and what arrived in reads that began inside the headers.
        self._header_bytes = self._header_reads = 0
        self._header_count = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        # uvicorn arms this only after a response: a connection that never
        # sends a byte would be kept for good.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Unlike uvicorn, bytes do not stop the idle timer: a request does
        # (on_message_begin). The parser skips bare CRLFs before a request, and
        # a drip of them must not keep a connection open.
        was_in_headers = self._in_headers
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(*self._refusal)
            else:
                logger.warning("http_request_invalid")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_headers:
            # Counted here too: the parser keeps a header it has not finished
            # to itself, so an endless one never reaches on_header.
            if was_in_headers:
                self._header_reads += len(data)
            if self._header_reads > self.limits.max_header_bytes:
                self._refuse(431, "Request Header Fields Too Large")
            elif self._deadline is None:
                self._arm(self.limits.header_timeout)
        elif self._in_body and self._deadline is None:
            self._arm(self.limits.body_timeout)

    # Parser callbacks

    def on_message_begin(self) -> None:
        self._unset_keepalive_if_required()
        super().on_message_begin()
        self._in_headers, self._in_body = True, False
        self._header_bytes = self._header_reads = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url), fields=0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, fields=1)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers, self._in_body = False, True
        self._cancel_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._cancel_deadline()
        super().on_message_complete()

    # Limits

    def _count(self, size: int, *, fields: int) -> None:
        self._header_bytes += size
        self._header_count += fields
        if (
            self._header_bytes > self.limits.max_header_bytes
            or self._header_count > self.limits.max_headers
        ):
            self._refusal = (431, "Request Header Fields Too Large")
            raise _Refused

    def _idle(self) -> bool:
        """No request being read, run or queued on this connection."""
        return not self.pipeline and (
            self.cycle is None or self.cycle.response_complete
        )

    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and self._in_body and self.cycle.response_started:
            self.transport.close()  # the app answered without reading it all
            return
        self._refuse(408, "Request Timeout")

    def _refuse(self, status: int, reason: str) -> None:
        """Answer `status` and close: the rest of this connection is unread."""
        self._cancel_deadline()
        self._in_headers = self._in_body = False
        logger.warning(
            "http_request_refused",
            extra={"status": status, "reason": reason, "peer": _host(self.client)},
        )
        body = reason.encode("ascii")
        head = [f"HTTP/1.1 {status} {reason}".encode("ascii")]
        head += [
            name + b": " + value for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: text/plain; charset=utf-8",
            b"content-length: " + str(len(body)).encode("ascii"),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()


def _host(client: tuple[str, int] | None) -> str | None:
    return client[0] if client else None
