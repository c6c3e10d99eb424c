"""GET /metrics: Prometheus exposition of core.metrics (all workers' values merged)."""

import anyio.to_thread
from fastapi import APIRouter, Request, Response

from authserver.core.metrics import render
from authserver.db.breaker import DatabaseBreaker

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    breaker: DatabaseBreaker | None = getattr(request.app.state, "db_breaker", None)
    if breaker is not None:
        breaker.publish()  # open -> half-open happens by the clock, not by an event
    # Merging many workers' files is disk and CPU work: keep it off the loop.
    body, content_type = await anyio.to_thread.run_sync(render)
    return Response(
        body, media_type=content_type, headers={"Cache-Control": "no-store"}
    )
