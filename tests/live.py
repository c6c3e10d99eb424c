"""A real uvicorn server on 127.0.0.1 and a free port, for end-to-end tests."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn

from authserver.core.config import Settings
from authserver.main import create_app
from tests.conftest import make_settings


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def live_settings(
    database_url: str, keys_dir: Path, sock: socket.socket, **overrides: object
) -> Settings:
    """Settings whose issuer is the server's real address (discovery must work)."""
    port = sock.getsockname()[1]
    return make_settings(
        database_url, keys_dir, issuer=f"http://127.0.0.1:{port}", **overrides
    )


@asynccontextmanager
async def live_server(
    settings: Settings, sock: socket.socket, **options: Any
) -> AsyncIterator[str]:
    """Serve create_app(settings) on `sock` in this event loop; yield its URL.

    `options` go to uvicorn.Config (proxy-header trust, for instance).
    """
    config = uvicorn.Config(
        create_app(settings), log_config=None, lifespan="on", **options
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            raise RuntimeError("live server did not start")
        yield settings.issuer
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()
