"""Fixtures for the API tests."""

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from fastapi import FastAPI

from authserver.api.state import app_state
from authserver.core.clock import utc_now
from authserver.main import create_app
from tests.conftest import TEST_ISSUER


@pytest.fixture
def clock(app: FastAPI) -> Iterator[Callable[[timedelta], None]]:
    """Move the app's clock (every path's "now") forward by a delta."""
    offset = timedelta(0)
    state = app_state(app)

    def advance(delta: timedelta) -> None:
        nonlocal offset
        offset += delta

    state.clock = lambda: datetime.now(UTC) + offset
    yield advance
    state.clock = utc_now


@pytest.fixture
async def open_api(settings, clean_db) -> AsyncIterator[httpx2.AsyncClient]:
    """A second app on the same database, with self-registration on."""
    app = create_app(settings.model_copy(update={"allow_self_registration": True}))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url=TEST_ISSUER) as c:
            yield c
