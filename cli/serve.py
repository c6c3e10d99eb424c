"""authctl serve: run the server with uvicorn."""

from typing import Annotated

import anyio.to_thread
import typer
import uvicorn

from authserver.core.config import Settings
from authserver.core.logging import configure_logging
from authserver.db.init import prepare_database
from authserver.services.keystore import KeyStoreError, keystore_from_settings
from cli.common import database_engine, run, say, settings


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[
        bool, typer.Option(help="Restart on code changes (development only).")
    ] = False,
) -> None:
    """Run the token server, applying pending migrations and creating the first key.

    Workers share the database and the key store, so each one sees rotations,
    prunes, disabled users and revoked tokens without a restart.

    Example: authctl serve --host 0.0.0.0 --port 8000 --workers 2
    """
    if reload and workers > 1:
        raise typer.BadParameter(
            "--reload runs a single worker", param_hint="--workers"
        )
    current = settings()
    # Once here, not in every worker: a broken database or key store is one
    # clear line instead of a traceback per worker.
    run(_prepare(current))
    say(f"serving {current.issuer} on http://{host}:{port}")
    # Our JSON logging for the supervisor process too; the app's middleware
    # writes the access line (uvicorn's would print query strings).
    configure_logging(current.log_level, current.log_format)
    uvicorn.run(
        "authserver.main:app",
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        log_config=None,
        access_log=False,
        log_level=None,
        server_header=False,
    )


async def _prepare(current: Settings) -> None:
    engine = database_engine()
    try:
        await prepare_database(
            engine, current.model_copy(update={"auto_migrate": True})
        )
    finally:
        await engine.dispose()
    keystore = keystore_from_settings(current)
    try:
        await anyio.to_thread.run_sync(keystore.ensure_signing_key)
        keystore.view()  # a wrong passphrase fails here, once
    except OSError as exc:
        raise KeyStoreError(
            f"key store {current.keys_dir}: {exc.strerror or exc}"
        ) from exc
