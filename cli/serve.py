"""authctl serve: run the server with uvicorn."""

from typing import Annotated

import anyio.to_thread
import typer
import uvicorn

from authserver.core.config import Settings
from authserver.db.init import prepare_database
from authserver.db.session import create_engine
from authserver.services.keystore import keystore_from_settings
from cli.common import console, run, settings


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[
        bool, typer.Option(help="Restart on code changes (dev).")
    ] = False,
) -> None:
    """Run the token server, applying pending migrations and creating the first key.

    Example: authctl serve --host 0.0.0.0 --port 8000 --workers 2
    """
    current = settings()
    run(_prepare(current))
    console.print(f"serving {current.issuer} on http://{host}:{port}")
    uvicorn.run(
        "authserver.main:app",
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        log_level="info",
    )


async def _prepare(current: Settings) -> None:
    engine = create_engine(current)
    try:
        await prepare_database(
            engine, current.model_copy(update={"auto_migrate": True})
        )
    finally:
        await engine.dispose()
    await anyio.to_thread.run_sync(keystore_from_settings(current).ensure_signing_key)
