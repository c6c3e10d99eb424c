"""Security headers for every HTML answer: one ASGI layer in front of the pages.

Any `text/html` response that passes through `SecurityHeadersMiddleware` gets a
Content-Security-Policy (the strict default, unless the page set its own: the
Swagger UI page needs inline styles), `X-Content-Type-Options: nosniff`,
`Referrer-Policy: no-referrer` and `X-Frame-Options: DENY` (with CSP
`frame-ancestors 'none'`: no clickjacking). A header the page set itself is
kept. A page answered ahead of the stack takes the same headers from
`html_security_headers()`.
"""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Same-origin everything, no plugins, no <base> tricks, forms only to us, never
# framed. Pages that need more name it in their own header.
DEFAULT_HTML_CSP = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
CSP = "Content-Security-Policy"
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


def html_security_headers(csp: str = DEFAULT_HTML_CSP) -> dict[str, str]:
    """The headers an HTML answer carries, with this page's CSP."""
    return {
        CSP: csp,
        **NOSNIFF,
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


_DEFAULT_HTML_HEADERS = html_security_headers()


class SecurityHeadersMiddleware:
    """Add the security headers a response lacks (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in _DEFAULT_HTML_HEADERS.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
