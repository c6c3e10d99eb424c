"""The public documents (JWKS, discovery): a fast path of the request pipeline.

Resource servers and clients fetch them often and they never touch the
database: FastAPI's router and dependency injection would cost several times
the work of the answer itself. The pipeline's layers (api/pipeline.py) give
these answers the X-Request-ID echo, the HTTP metrics and an access line (at
DEBUG, like health probes: machines polling a cacheable document).
"""

from starlette.types import Receive, Scope, Send

from authserver.api.middleware import scope_header
from authserver.api.v1.well_known import (
    JWKS_TYPE,
    discovery_headers,
    etag_matches,
    jwks_headers,
    jwks_unavailable,
)
from authserver.core.config import Settings
from authserver.services.keystore import KeyStoreError, KeyView, SigningKeyStore

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATHS = (
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
)
PATHS = frozenset({JWKS_PATH, *DISCOVERY_PATHS})
# RFC 9110 §9.3.2: HEAD is GET without the body (caches and probes use it).
READ_METHODS = frozenset({"GET", "HEAD"})

RawHeaders = list[tuple[bytes, bytes]]


class StaticDocuments:
    """The answers are encoded once: the discovery document at start, the
    JWKS whenever the key store's view changes (a rotation or a key's state
    turning), so a request only picks the bytes to send."""

    def __init__(
        self, keystore: SigningKeyStore, settings: Settings, discovery_json: bytes
    ) -> None:
        self.keystore = keystore
        self.settings = settings
        self.discovery_json = discovery_json
        self.discovery_headers = _raw(discovery_headers(settings), discovery_json)
        self._jwks: tuple[KeyView, RawHeaders, RawHeaders] | None = None

    @staticmethod
    def route(scope: Scope) -> str | None:
        path: str = scope["path"]
        if path in PATHS and scope["method"] in READ_METHODS:
            return path
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == JWKS_PATH:
            status, headers, body = self._jwks_answer(
                scope_header(scope, b"if-none-match")
            )
        else:
            status, headers, body = 200, self.discovery_headers, self.discovery_json
        await send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        # HEAD: the GET's headers, Content-Length included, and no body.
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})

    def _jwks_answer(self, if_none_match: str | None) -> tuple[int, RawHeaders, bytes]:
        """The same answers as well_known.jwks_answer, from the encoded cache."""
        try:
            view = self.keystore.view()
        except KeyStoreError as exc:
            status, headers, body = jwks_unavailable(exc)
            return status, _raw(headers, body), body
        cached = self._jwks
        if cached is None or cached[0] is not view:
            shared = jwks_headers(view, self.settings)
            ok = _raw({**shared, "Content-Type": JWKS_TYPE}, view.jwks_json)
            cached = self._jwks = (view, ok, _raw(shared, b""))
        if etag_matches(if_none_match, view.etag):
            return 304, cached[2], b""
        return 200, cached[1], view.jwks_json


def _raw(headers: dict[str, str], body: bytes) -> RawHeaders:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    return raw
