"""Fixtures for the API tests."""

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI, Request

from authserver.api.deps import SessionDep, get_grant_context
from authserver.services.grants.common import GrantContext


@pytest.fixture
def clock(app: FastAPI) -> Iterator[Callable[[timedelta], None]]:
    """Move the token endpoint's clock forward by a delta."""
    offset = timedelta(0)

    async def context(request: Request, session: SessionDep) -> GrantContext:
        ctx = await get_grant_context(request, session)
        return dataclasses.replace(ctx, now=datetime.now(UTC) + offset)

    def advance(delta: timedelta) -> None:
        nonlocal offset
        offset += delta

    app.dependency_overrides[get_grant_context] = context
    yield advance
    app.dependency_overrides.pop(get_grant_context, None)
