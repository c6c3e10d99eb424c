"""The FastAPI application: `create_app()` and the module-level `app`."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from authserver.api import docs
from authserver.api.errors import register_error_handlers
from authserver.api.pipeline import Dispatcher, build_pipeline
from authserver.api.security_headers import SecurityHeadersMiddleware
from authserver.api.state import AppState
from authserver.api.static_documents import StaticDocuments
from authserver.api.templates import Pages
from authserver.api.token_endpoint import TokenEndpoint
from authserver.api.v1 import (
    authorize,
    health,
    introspect,
    logout,
    metrics,
    revoke,
    token,
    userinfo,
    users,
    well_known,
)
from authserver.core.config import Settings, get_settings
from authserver.core.lockout import LockPolicy
from authserver.core.logging import cap_library_loggers, configure_logging
from authserver.core.metrics import forget_this_process
from authserver.crud.rotation_batch import rotation_batcher
from authserver.db.breaker import DatabaseBreaker, install_breaker
from authserver.db.init import prepare_database
from authserver.db.session import create_engine, create_session_factory
from authserver.services import maintenance
from authserver.services.clients import ClientCache
from authserver.services.keystore import keystore_from_settings
from authserver.services.passwords import PasswordHasher
from authserver.services.tokens import TokenService

logger = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 300.0


class AuthServerApp(FastAPI):
    """FastAPI, inside the one request pipeline (api/pipeline.py): every HTTP
    request passes its layers, then a fast path (token endpoint, public
    documents) or `framework`; lifespan events go straight to FastAPI."""

    pipeline: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.pipeline is not None:
            await self.pipeline(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own handling (its telemetry hook, error middleware, router),
        which the fast paths skip."""
        await super().__call__(scope, receive, send)


def freeze_startup_objects() -> None:
    """Keep what start-up made (modules, models, the app) out of every garbage
    collection: it lives as long as the process, and a full collection would
    walk all of it again for nothing."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Also when the app is embedded under someone else's logging set-up: the
    # drivers' DEBUG lines carry bound values (hashes, sealed blobs).
    cap_library_loggers(log_sql=settings.log_sql)
    keystore = keystore_from_settings(settings)
    state = AppState(
        settings=settings,
        keystore=keystore,
        tokens=TokenService(keystore, settings),
        hasher=PasswordHasher(
            settings.bcrypt_rounds, settings.password_hash_concurrency
        ),
        client_cache=ClientCache(settings.client_cache_ttl),
        lock_policy=LockPolicy(
            settings.lockout_threshold, settings.lockout_base, settings.lockout_max
        ),
        db_breaker=DatabaseBreaker(
            settings.db_breaker_failure_threshold,
            settings.db_breaker_recovery_timeout.total_seconds(),
        ),
        discovery_json=well_known.discovery_document(settings),
        pages=Pages(settings.issuer, settings.templates_dir),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        await prepare_database(engine, settings)
        # Several workers may start at once: the key store's lock makes one key.
        if await keystore.ensure_signing_key():
            logger.info("signing_key_created")
        await keystore.refresh()
        keystore.view()  # fail now, not on the first request, if keys are unusable
        if problem := keystore.exposure():
            logger.warning("keystore_not_private", extra={"problem": problem})
        watcher = asyncio.create_task(keystore.watch(settings.keystore_check_interval))
        # After start-up checks, which should fail loudly rather than with 503s.
        install_breaker(engine, state.db_breaker)
        state.session_factory = create_session_factory(engine)
        if engine.dialect.name == "postgresql":
            state.rotation_batcher = rotation_batcher(engine)
        purger = asyncio.create_task(
            maintenance.run_periodically(state.session_factory, PURGE_INTERVAL_SECONDS)
        )
        freeze_startup_objects()
        try:
            yield
        finally:
            for task in (purger, watcher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await keystore.aclose()
            if state.rotation_batcher is not None:
                await state.rotation_batcher.aclose()
                state.rotation_batcher = None
            await engine.dispose()
            forget_this_process()

    app = AuthServerApp(
        title="authserver",
        summary="OAuth 2.0 / OpenID Connect token server",
        version="0.1.0",
        lifespan=lifespan,
        # No 307 from /oauth2/token/ to /oauth2/token: the redirect is built
        # from the Host header and keeps the method and body, so a client that
        # follows it resends its secrets wherever Host pointed.
        redirect_slashes=False,
        # FastAPI's own pages load Swagger UI and ReDoc from a CDN; ours
        # (api/docs.py) serve it from this server.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.authserver = state  # read through api.state.app_state
    fast_paths = (
        TokenEndpoint(state),
        StaticDocuments(keystore, settings, state.discovery_json),
    )
    app.pipeline = build_pipeline(
        Dispatcher(app.framework, fast_paths), max_body_bytes=settings.max_body_bytes
    )
    register_error_handlers(app)
    # Every HTML page is a FastAPI route (the fast paths answer JSON only).
    app.add_middleware(SecurityHeadersMiddleware)
    app.include_router(token.router)
    app.include_router(well_known.router)
    app.include_router(revoke.router)
    app.include_router(introspect.router)
    app.include_router(userinfo.router)
    app.include_router(users.router)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(authorize.router)
    app.include_router(logout.router)
    app.mount(
        "/assets",
        StaticFiles(packages=[("authserver", "static")]),
        name="assets",
    )
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn authserver.main:app` builds the app from the environment on
    # first access, so importing this module (tests, tools) has no side effects.
    if name == "app":
        from authserver.core.config import ConfigError

        try:
            settings = get_settings()
            configure_logging(
                settings.log_level, settings.log_format, log_sql=settings.log_sql
            )
            application = create_app(settings)
        except ConfigError as exc:
            raise SystemExit(f"authserver: {exc}") from None
        globals()["app"] = application
        return application
    raise AttributeError(name)
