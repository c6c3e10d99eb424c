"""Server-rendered pages (sign-in, consent, logout, errors): Jinja2 templates
shipped in the package, each replaceable from AUTH_TEMPLATES_DIR by file name."""

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

from authserver.api.security_headers import html_security_headers
from authserver.core.exceptions import NO_STORE, OAuthError

PRODUCT = "authserver"
SCOPE_TEXT = {
    "openid": "Confirm who you are",
    "profile": "See your username and profile",
    "email": "See your email address",
    "admin": "Administer this sign-in service",
}


def page_headers(form_targets: str = "") -> dict[str, str]:
    """The security headers of every HTML answer with this page's CSP (no
    script, styles from us only, never framed), and no caching of a page
    that holds a CSRF token.

    `form_targets` adds CSP sources a form may end up at: browsers check
    form-action against the redirect after a post too, and a sign-in ends at
    the client's redirect URI.
    """
    form_action = f"'self' {form_targets}".strip()
    csp = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
    return {**html_security_headers(csp), **NO_STORE}


def csp_source(uri: str) -> str:
    """The CSP source expression that admits `uri`: its origin, or for a
    native app's private-use scheme (com.example.app:/cb) the scheme."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


class Pages:
    """The template environment and the one way a page becomes a response."""

    def __init__(self, issuer: str, templates_dir: Path | None) -> None:
        loaders: list[Any] = []
        if templates_dir is not None:
            loaders.append(FileSystemLoader(templates_dir))
        loaders.append(PackageLoader("authserver", "templates"))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            auto_reload=False,
        )
        # Pages are linked under the issuer's path (it may sit behind a prefix).
        self.base_path = urlsplit(issuer).path.rstrip("/")
        self.env.globals.update(
            product=PRODUCT,
            asset=lambda name: f"{self.base_path}/assets/{name}",
            scope_text=lambda scope: SCOPE_TEXT.get(scope, f"Use “{scope}”"),
        )

    def url(self, path: str) -> str:
        return f"{self.base_path}{path}"

    def render(
        self,
        name: str,
        *,
        status_code: int = 200,
        form_targets: str = "",
        **context: Any,
    ) -> HTMLResponse:
        body = self.env.get_template(name).render(**context)
        return HTMLResponse(
            body, status_code=status_code, headers=page_headers(form_targets)
        )

    def error(self, exc: OAuthError) -> HTMLResponse:
        """An error the user sees because it cannot go back to the client."""
        return self.render(
            "error.html",
            status_code=exc.status_code,
            message=exc.description or "The request could not be completed.",
            code=exc.error,
        )
