"""The one place that turns exceptions into HTTP error bodies."""

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from authserver.api.observability import HTTP_METHODS
from authserver.core.context import annotate_request
from authserver.core.exceptions import (
    NO_STORE,
    AlreadyExistsError,
    DatabaseUnavailableError,
    DomainError,
    InvalidRequestError,
    InvalidValueError,
    NotFoundError,
    OAuthError,
)
from authserver.db.breaker import is_connection_failure

logger = logging.getLogger(__name__)

OAUTH_PATHS = ("/oauth2/",)


async def oauth_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    annotate_request(error=exc.error)  # for the access-log line and the metrics
    logger.log(
        exc.log_level,
        "oauth_error",
        extra={"error": exc.error, "detail": exc.detail, "path": request.url.path},
    )
    body = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    """Users API failures: 404, 409 and 422 in the one documented error shape."""
    assert isinstance(exc, DomainError)
    status, code = 400, "invalid_request"
    for cls, mapped in _DOMAIN_STATUS.items():
        if isinstance(exc, cls):
            status, code = mapped
            break
    description = exc.public if isinstance(exc, AlreadyExistsError) else str(exc)
    body: dict[str, object] = {"error": code, "error_description": description}
    if isinstance(exc, InvalidValueError):
        loc = ["body", exc.field] if exc.field else ["body"]
        body["errors"] = [{"loc": loc, "msg": str(exc), "type": "value_error"}]
    logger.info("domain_error", extra={"error": code, "path": request.url.path})
    return JSONResponse(body, status_code=status, headers=NO_STORE)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if request.url.path.startswith(OAUTH_PATHS):
        # The OAuth protocol has no 422: a malformed request is invalid_request.
        return await oauth_error_handler(request, _invalid_request(exc))
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
        for e in exc.errors()
    ]
    return JSONResponse(
        {
            "error": "validation_error",
            "error_description": "invalid input",
            "errors": errors,
        },
        status_code=422,
        headers=NO_STORE,
    )


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    body = {"error": _HTTP_CODES.get(exc.status_code, "http_error")}
    if isinstance(exc.detail, str):
        body["error_description"] = exc.detail
    headers = {**NO_STORE, **(exc.headers or {})}
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110 §15.5.6).

    Starlette's 405 names only the first route whose path matched; a path
    served by several routes (GET and PATCH /users/me) needs all of them.
    Each method is put to the router as it would route it.
    """
    routes = request.app.router.routes
    allowed = [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in routes
        )
    ]
    return ", ".join(allowed)


async def database_error_handler(request: Request, exc: Exception) -> Response:
    """A connection failure the breaker did not convert (a pool timeout) is a 503."""
    if not is_connection_failure(exc):
        return await unhandled_error_handler(request, exc)
    unavailable = DatabaseUnavailableError(detail=f"database: {type(exc).__name__}")
    return await oauth_error_handler(request, unavailable)


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled_error", extra={"path": request.url.path})
    return JSONResponse({"error": "server_error"}, status_code=500, headers=NO_STORE)


def _invalid_request(exc: RequestValidationError) -> OAuthError:
    first = exc.errors()[0] if exc.errors() else {}
    field = str(first.get("loc", ["", "request"])[-1])
    # Only the location and the kind of problem: the input may be a secret.
    return InvalidRequestError(
        f"invalid parameter {field}", detail=f"{first.get('type')} at {field}"
    )


_HTTP_CODES = {
    400: "invalid_request",  # a body FastAPI cannot parse (bad UTF-8, nested too deep)
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
}
_DOMAIN_STATUS: dict[type[DomainError], tuple[int, str]] = {
    NotFoundError: (404, "not_found"),
    AlreadyExistsError: (409, "conflict"),
    InvalidValueError: (422, "validation_error"),
}


Handler = Callable[[Request, Exception], Awaitable[Response]]
# Most specific first: render_error takes the first that matches.
ERROR_HANDLERS: list[tuple[type[Exception], Handler]] = [
    (OAuthError, oauth_error_handler),
    (DomainError, domain_error_handler),
    (RequestValidationError, validation_error_handler),
    (StarletteHTTPException, http_error_handler),
    (SQLAlchemyError, database_error_handler),
    (Exception, unhandled_error_handler),
]


def register_error_handlers(app: FastAPI) -> None:
    for exc_class, handler in ERROR_HANDLERS:
        app.add_exception_handler(exc_class, handler)


async def render_error(request: Request, exc: Exception) -> Response:
    """The answer the registered handlers give `exc`, for a fast path that
    renders its own errors (the token endpoint)."""
    handler = next(h for cls, h in ERROR_HANDLERS if isinstance(exc, cls))
    return await handler(request, exc)
