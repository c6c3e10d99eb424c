"""Fixtures for the API tests."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from authserver.api.token_endpoint import TokenEndpoint, utc_now


@pytest.fixture
def clock(app: FastAPI) -> Iterator[Callable[[timedelta], None]]:
    """Move the token endpoint's clock forward by a delta."""
    offset = timedelta(0)
    endpoint: TokenEndpoint = app.state.token_endpoint

    def advance(delta: timedelta) -> None:
        nonlocal offset
        offset += delta

    endpoint.clock = lambda: datetime.now(UTC) + offset
    yield advance
    endpoint.clock = utc_now
