"""authctl serve: run the server with uvicorn (authserver/core/supervisor.py)."""

from __future__ import annotations

import gc
import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import database_engine, run, safe_url, settings
from cli.output import fail, note

if TYPE_CHECKING:
    from authserver.core.config import Settings

logger = logging.getLogger("authserver.serve")

# Import strings, not objects: uvicorn's worker processes import them.
APP = "authserver.main:app"
HTTP_PROTOCOL = "authserver.serving:LimitedHttpToolsProtocol"


def serve(
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Interface to bind.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(metavar="PORT", min=1, max=65535, help="TCP port.")
    ] = 8000,
    workers: Annotated[
        int, typer.Option(metavar="N", min=1, help="Worker processes.")
    ] = 1,
    reload: Annotated[
        bool, typer.Option("--reload", help="Restart on code changes (development).")
    ] = False,
) -> None:
    """Run the token server, applying pending migrations and creating the first key.

    With AUTH_AUTO_MIGRATE=false it applies none: it refuses to start on a
    schema that is not at the latest revision (run `authctl db upgrade`).

    Workers share the database and the key store, so each one sees rotations,
    prunes, disabled users and revoked tokens without a restart.

    Example: authctl serve --host 0.0.0.0 --port 8000 --workers 2
    """
    from authserver.core import supervisor
    from authserver.core.logging import configure_logging

    if reload and workers > 1:
        raise typer.BadParameter(
            "--reload runs a single worker", param_hint="--workers"
        )
    current = settings()
    _check_listen(host, port)
    # From here on every line is a log record in AUTH_LOG_FORMAT, also for the
    # supervisor process; the app's middleware writes the access line
    # (uvicorn's would print query strings).
    configure_logging(current.log_level, current.log_format, log_sql=current.log_sql)
    # Once here, not in every worker: a broken database or key store is one
    # clear line instead of a traceback per worker.
    run(_prepare(current))
    logger.info(
        "serving",
        extra={"issuer": current.issuer, "url": f"http://{host}:{port}"},
    )
    supervisor.run(
        APP,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        log_config=None,
        access_log=False,
        log_level=None,
        **uvicorn_options(current),
    )
    # Stopped by SIGINT (uvicorn turns SIGTERM into its default action, which
    # exits at once). Everything is closed by now; what is left is the
    # interpreter's final collection of every object the server made, which
    # took 0.25 to 0.6 s after "Finished server process": skip it.
    gc.freeze()


def uvicorn_options(current: Settings) -> dict[str, Any]:
    """uvicorn's options for a hardened server (see authserver/serving.py)."""
    return {
        "http": HTTP_PROTOCOL,
        "limit_concurrency": current.http_max_connections,
        "timeout_keep_alive": max(
            1, round(current.http_keep_alive_timeout.total_seconds())
        ),
        # The same bound, should anyone run the app on h11.
        "h11_max_incomplete_event_size": current.http_max_header_bytes,
        "server_header": False,
    }


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
    """Bring the schema to head and make the first key; log what was made."""
    from authserver.db.init import prepare_database
    from authserver.services.keystore import KeyStoreError, keystore_from_settings

    engine = database_engine(create=True)
    try:
        # AUTH_AUTO_MIGRATE as the server itself reads it: operators who
        # migrate in the deploy step set it to false.
        migration = await prepare_database(engine, current)
    finally:
        await engine.dispose()
    keystore = keystore_from_settings(current)
    try:
        key_created = await keystore.ensure_signing_key()
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
    made: dict[str, Any] = {}
    if migration is not None and migration.changed:
        made["schema"] = (
            f"created at revision {migration.after}"
            if migration.before is None
            else f"upgraded from {migration.before} to {migration.after}"
        )
        made["database"] = _where(current)
    if key_created:
        made["signing_key"] = "created"
        if current.keys_store == "file":
            made["keys_dir"] = str(Path(current.keys_dir).resolve())
        else:
            made["keys_store"] = "database"
    if made:
        # One line for what this start made: on a first start, both.
        logger.info("created" if key_created else "migrated", extra=made)


def _where(current: Settings) -> str:
    """The database for a log line: SQLite's file as an absolute path."""
    from sqlalchemy.engine import make_url

    url = make_url(current.database_url)
    if current.is_sqlite and url.database and url.database != ":memory:":
        return str(Path(url.database).resolve())
    return safe_url(current.database_url)
