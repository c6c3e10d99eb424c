"""Fixtures for the API tests."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from authserver.api.state import app_state
from authserver.core.clock import utc_now


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
