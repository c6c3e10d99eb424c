"""A refresh waiting for its shared rotation statement holds no connection.

The statement (db.rotation_batcher) runs on a connection of its own. A request
that had taken one for a read (its client's lookup) and kept it while waiting
would, with as many such requests as the pool has connections, leave the
statement none: every refresh of the process then stalled until the pool's
timeout failed the batch. One connection and no client cache make that case
out of a single refresh. PostgreSQL only: SQLite has no batcher.
"""

from collections.abc import AsyncIterator

import httpx2
import pytest
from prometheus_client import REGISTRY

from authserver.main import create_app
from tests.api.helpers import password_grant, refresh_grant, tokens
from tests.conftest import TEST_ISSUER
from tests.factories import make_client, make_user

pytestmark = pytest.mark.parametrize(
    "database_url",
    [pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)

BATCHES = "authserver_refresh_rotation_batch_size_count"


@pytest.fixture
async def one_connection(settings, clean_db) -> AsyncIterator[httpx2.AsyncClient]:
    # One pooled connection, no overflow, and a client read on every request.
    app = create_app(
        settings.model_copy(update={"db_pool_size": 1, "client_cache_ttl": 0})
    )
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url=TEST_ISSUER) as c:
            yield c


async def test_the_shared_statement_gets_the_connection_the_lookup_used(
    one_connection, session_factory
):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    login = tokens(await password_grant(one_connection, client, user.username))
    before = REGISTRY.get_sample_value(BATCHES) or 0.0

    rotated = await refresh_grant(one_connection, client, login["refresh_token"])

    assert tokens(rotated)["refresh_token"] != login["refresh_token"]
    # Written by the shared statement, not by the fallback a failed batch takes.
    assert REGISTRY.get_sample_value(BATCHES) == before + 1
