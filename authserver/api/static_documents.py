"""The public documents (JWKS, discovery): a fast path of the request pipeline.

Resource servers and clients fetch them often and they never touch the
database: FastAPI's router and dependency injection would cost several times
the work of the answer itself. The pipeline's layers (api/pipeline.py) give
these answers the X-Request-ID echo, the HTTP metrics and an access line (at
DEBUG, like health probes: machines polling a cacheable document).
"""

from starlette.types import Receive, Scope, Send

from authserver.api.v1.well_known import discovery_headers, jwks_answer
from authserver.core.config import Settings
from authserver.services.keystore import SigningKeyStore

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATHS = (
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
)
PATHS = frozenset({JWKS_PATH, *DISCOVERY_PATHS})
# RFC 9110 §9.3.2: HEAD is GET without the body (caches and probes use it).
READ_METHODS = frozenset({"GET", "HEAD"})


class StaticDocuments:
    def __init__(
        self, keystore: SigningKeyStore, settings: Settings, discovery_json: bytes
    ) -> None:
        self.keystore = keystore
        self.settings = settings
        self.discovery_json = discovery_json
        self.discovery_headers = discovery_headers(settings)  # fixed until restart

    @staticmethod
    def route(scope: Scope) -> str | None:
        path: str = scope["path"]
        if path in PATHS and scope["method"] in READ_METHODS:
            return path
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == JWKS_PATH:
            status, headers, body = jwks_answer(
                self.keystore, self.settings, _header(scope, b"if-none-match")
            )
        else:
            status, headers = 200, self.discovery_headers
            body = self.discovery_json
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        # HEAD: the GET's headers, Content-Length included, and no body.
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
