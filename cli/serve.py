"""authctl serve: run the server with uvicorn."""

import socket
from typing import Annotated

import typer
import uvicorn

from authserver.core.config import Settings
from authserver.core.logging import configure_logging
from authserver.db.init import prepare_database
from authserver.services.keystore import KeyStoreError, keystore_from_settings
from cli.common import database_engine, fail, note, run, say, settings


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[
        bool, typer.Option(help="Restart on code changes (development only).")
    ] = False,
) -> None:
    """Run the token server, applying pending migrations and creating the first key.

    With AUTH_AUTO_MIGRATE=false it applies none: it refuses to start on a
    schema that is not at the latest revision (run `authctl db upgrade`).

    Workers share the database and the key store, so each one sees rotations,
    prunes, disabled users and revoked tokens without a restart.

    Example: authctl serve --host 0.0.0.0 --port 8000 --workers 2
    """
    if reload and workers > 1:
        raise typer.BadParameter(
            "--reload runs a single worker", param_hint="--workers"
        )
    current = settings()
    _check_listen(host, port)
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


def _check_listen(host: str, port: int) -> None:
    """Fail before migrating or starting anything if HOST:PORT cannot be bound.

    uvicorn would find out after the application started, and say so only in a
    log line. Binds the way it will (every address HOST resolves to, with
    SO_REUSEADDR so a closing connection is no conflict) and lets go at once.
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        addresses = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, proto, _name, address in addresses:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
    except (OSError, ValueError) as exc:  # ValueError: a NUL or bad IDNA name
        fail(f"cannot listen on {where}: {getattr(exc, 'strerror', None) or exc}")


async def _prepare(current: Settings) -> None:
    engine = database_engine()
    try:
        # AUTH_AUTO_MIGRATE as the server itself reads it: operators who
        # migrate in the deploy step set it to false.
        await prepare_database(engine, current)
    finally:
        await engine.dispose()
    keystore = keystore_from_settings(current)
    try:
        await keystore.ensure_signing_key()
        await keystore.refresh()
        keystore.view()  # a wrong passphrase fails here, once
    except OSError as exc:
        if current.keys_store == "database":
            raise  # asyncpg's bare OSError: the database is unreachable
        raise KeyStoreError(
            f"key store {current.keys_dir}: {exc.strerror or exc}"
        ) from exc
    finally:
        await keystore.aclose()
    if problem := keystore.exposure():
        note(f"warning: {problem}")
