"""Health probes for load balancers and orchestrators: liveness and readiness."""

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from authserver.api.deps import StateDep
from authserver.core.exceptions import DatabaseUnavailableError
from authserver.db.breaker import DatabaseBreaker
from authserver.db.session import SessionFactory, ping
from authserver.services.keystore import KeyStoreError, SigningKeyStore

router = APIRouter(tags=["operations"])
logger = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}
OK = "ok"


# HEAD too: some probes (and RFC 9110 §9.1) expect it wherever GET works.
# Undocumented, so the OpenAPI schema keeps one operation per probe.
@router.head("/health/live", include_in_schema=False)
@router.get("/health/live", summary="The process is up and serving")
async def live() -> JSONResponse:
    # Deliberately checks nothing else: a restart does not cure a dead database.
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


@router.head("/health/ready", include_in_schema=False)
@router.get("/health/ready", summary="Database reachable and a signing key loaded")
async def ready(state: StateDep) -> JSONResponse:
    settings, keystore = state.settings, state.keystore
    checks = {
        "database": await _database(
            state.sessions(),
            state.db_breaker,
            settings.health_check_timeout.total_seconds(),
        ),
        "signing_key": _signing_key(keystore),
    }
    healthy = all(result == OK for result in checks.values())
    body = {"status": "ready" if healthy else "unavailable", "checks": checks}
    if healthy:
        return JSONResponse(body, headers=NO_STORE)
    failed = [name for name, result in checks.items() if result != OK]
    logger.warning("not_ready", extra={"failed_checks": failed})
    return JSONResponse(body, status_code=503, headers={**NO_STORE, "Retry-After": "1"})


async def _database(
    factory: SessionFactory, breaker: DatabaseBreaker, timeout: float
) -> str:
    # Through the engine, hence through the breaker: an open breaker answers
    # at once and a probe in half-open state may close it.
    try:
        await ping(factory, timeout)
    except DatabaseUnavailableError as exc:
        return "unavailable: " + (exc.detail or "unreachable")
    except TimeoutError as exc:
        breaker.record_failure(exc)  # cancelled mid-query: the engine never saw it
        return f"unavailable: no answer within {timeout:g} s"
    except Exception as exc:
        logger.exception("readiness_database_error")
        return f"error: {type(exc).__name__}"
    return OK


def _signing_key(keystore: SigningKeyStore) -> str:
    try:
        keystore.view()
    except (KeyStoreError, OSError) as exc:
        return f"error: {type(exc).__name__}"
    return OK
