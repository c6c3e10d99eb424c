"""End-to-end fixtures: a real uvicorn server on the test database."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.live import free_socket, live_server, live_settings


@pytest.fixture
async def live(database_url: str, tmp_path: Path, clean_db: None) -> AsyncIterator[str]:
    """The URL of a server started for this test (its own key store)."""
    sock = free_socket()
    settings = live_settings(database_url, tmp_path / "keys", sock)
    async with live_server(settings, sock) as url:
        yield url
