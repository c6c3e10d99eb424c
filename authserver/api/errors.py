"""The one place that turns exceptions into HTTP error bodies."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from authserver.core.exceptions import (
    InvalidClientError,
    InvalidRequestError,
    OAuthError,
)

logger = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
OAUTH_PATHS = ("/oauth2/",)


async def oauth_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    logger.warning(
        "oauth_error",
        extra={"error": exc.error, "detail": exc.detail, "path": request.url.path},
    )
    body = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClientError) and exc.used_basic:
        headers["WWW-Authenticate"] = 'Basic realm="authserver"'
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


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
    )


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    body = {"error": _HTTP_CODES.get(exc.status_code, "http_error")}
    if isinstance(exc.detail, str):
        body["error_description"] = exc.detail
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled_error", extra={"path": request.url.path})
    return JSONResponse({"error": "server_error"}, status_code=500, headers=NO_STORE)


def _invalid_request(exc: RequestValidationError) -> OAuthError:
    first = exc.errors()[0] if exc.errors() else {}
    field = str(first.get("loc", ["", "request"])[-1])
    return InvalidRequestError(f"invalid parameter {field}", detail=str(first))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OAuthError, oauth_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
