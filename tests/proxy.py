"""A TCP relay on 127.0.0.1 that a test can cut and restore: a database going away."""

import asyncio
import contextlib


class TcpProxy:
    """Relays 127.0.0.1:<port> to a target; `cut()` drops everything at once.

    Cutting closes the listener (new connections are refused) and aborts every
    relayed connection (the server "goes away" mid-conversation); `restore()`
    listens again on the same port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._relay, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._links):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def restore(self) -> None:
        await self.start()

    async def _relay(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._links.add(client_writer)
        server_writer: asyncio.StreamWriter | None = None
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
            self._links.add(server_writer)
            await asyncio.gather(
                _pipe(client_reader, server_writer),
                _pipe(server_reader, client_writer),
            )
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for writer in (client_writer, server_writer):
                if writer is not None:
                    self._links.discard(writer)
                    writer.transport.abort()
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    # One side finished: end the other too, as a real connection would.
    writer.transport.abort()
