"""What the browser-facing endpoints (authorize, login, consent, logout) share:
reading their parameters, their cookies, and redirecting."""

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from authserver.api.oauth_wire import FORM_CONTENT_TYPE, parse_oauth_form
from authserver.core.config import Settings
from authserver.services.sessions import cookie_name, cookie_secure

CSRF_COOKIE = "authserver_csrf"
SECURE_CSRF_COOKIE = "__Host-authserver_csrf"


async def read_params(request: Request) -> dict[str, str]:
    """The query of a GET or the form of a POST, each parameter at most once
    (RFC 6749 §3.1); raises InvalidRequestError otherwise."""
    if request.method == "POST":
        return parse_oauth_form(
            request.headers.get("content-type"), await request.body()
        )
    return parse_oauth_form(FORM_CONTENT_TYPE, request.url.query.encode())


def redirect(request: Request, url: str) -> Response:
    """302 after a GET; 303 after a POST, so the browser does not re-post the
    form (with the password) to the client (RFC 9700 §4.12)."""
    status = 303 if request.method == "POST" else 302
    return RedirectResponse(
        url, status_code=status, headers={"Cache-Control": "no-store"}
    )


def session_cookie(request: Request, settings: Settings) -> str | None:
    return request.cookies.get(cookie_name(settings.issuer))


def csrf_cookie_name(settings: Settings) -> str:
    return SECURE_CSRF_COOKIE if cookie_secure(settings.issuer) else CSRF_COOKIE


def set_cookie(
    response: Response, settings: Settings, name: str, value: str, max_age: int
) -> None:
    """HttpOnly and SameSite=Lax: no script reads it, and no other site's
    form post or iframe carries it; Secure whenever the issuer is https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=cookie_secure(settings.issuer),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name,
        path="/",
        secure=cookie_secure(settings.issuer),
        httponly=True,
        samesite="lax",
    )
