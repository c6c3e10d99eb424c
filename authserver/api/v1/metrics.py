"""GET /metrics: Prometheus exposition of core.metrics (all workers' values merged)."""

import anyio.to_thread
from fastapi import APIRouter, Response

from authserver.api.deps import StateDep
from authserver.core.metrics import render

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    # open -> half-open happens by the clock, not by an event
    state.db_breaker.publish()
    # Merging many workers' files is disk and CPU work: keep it off the loop.
    body, content_type = await anyio.to_thread.run_sync(render)
    return Response(
        body, media_type=content_type, headers={"Cache-Control": "no-store"}
    )
