"""A tiny relying party for end-to-end tests: an HTTP server on 127.0.0.1 that
records each request to its callback and answers with a plain page."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


@dataclass
class CallbackServer:
    base_url: str = ""
    hits: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def wait(self, path: str, timeout: float = 10) -> dict[str, str]:
        """The query of the first request to `path`."""
        async with asyncio.timeout(timeout):
            while True:
                for hit_path, query in self.hits:
                    if hit_path == path:
                        return query
                self.arrived.clear()
                await self.arrived.wait()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            request_line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # headers: not needed
            target = request_line.split(b" ")[1].decode()
            parts = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            self.hits.append((parts.path, query))
            self.arrived.set()
            body = b"<!doctype html><title>Test app</title><p>Back at the app</p>"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        finally:
            writer.close()


@asynccontextmanager
async def callback_server() -> AsyncIterator[CallbackServer]:
    rp = CallbackServer()
    server = await asyncio.start_server(rp._handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rp.base_url = f"http://127.0.0.1:{port}"
    try:
        yield rp
    finally:
        server.close()
        await server.wait_closed()
