"""An API that trusts authserver's access tokens, verified offline (RFC 9068 §4).

It reads the issuer's discovery document once to find `jwks_uri`, keeps the
key set in memory, and verifies every token itself: RS256 only, `typ: at+jwt`,
a known `kid`, `iss`, `aud` and `exp`. A token signed with a key it has not
seen (the issuer rotated its keys) makes it refetch the key set once, at most
every `refetch_interval` seconds so that made-up kids cannot flood the issuer.
The key set is also refreshed when its Cache-Control max-age runs out.

Only the project's runtime dependencies (FastAPI, joserfc) and the standard
library are used. Run it beside the server:

    AUTH_ISSUER=http://127.0.0.1:8000 RS_AUDIENCE=http://127.0.0.1:8000 \\
        uvicorn examples.resource_server:app --port 9000

    curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:9000/hello
    curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:9000/reports

Revocation is not visible offline: a revoked token stays valid here until it
expires (15 minutes by default). An API that must notice at once asks the
issuer's introspection endpoint instead.
"""

import asyncio
import base64
import json
import os
import re
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ["RS256"]  # the issuer signs with RS256 only; accept nothing else
ACCESS_TOKEN_TYP = "at+jwt"
REPORTS_SCOPE = "reports"
DEFAULT_MAX_AGE = 300.0

# fetch(url) -> (JSON document, max-age in seconds or None)
Fetch = Callable[[str], Awaitable[tuple[dict[str, Any], float | None]]]


class UnavailableError(Exception):
    """The issuer's metadata or keys could not be fetched."""


async def fetch_json(url: str) -> tuple[dict[str, Any], float | None]:
    """GET a JSON document over http(s) in a worker thread (urllib blocks)."""
    if not url.startswith(("https://", "http://")):
        raise UnavailableError(f"refusing to fetch {url!r}")

    def get() -> tuple[dict[str, Any], float | None]:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            document = json.load(response)
            match = re.search(
                r"max-age=(\d+)", response.headers.get("Cache-Control", "")
            )
            return document, float(match.group(1)) if match else None

    try:
        return await asyncio.to_thread(get)
    except (OSError, ValueError) as exc:
        raise UnavailableError(f"cannot fetch {url}: {exc}") from exc


class KeyCache:
    """The issuer's signing keys, fetched lazily and refreshed on demand."""

    def __init__(
        self, issuer: str, *, fetch: Fetch = fetch_json, refetch_interval: float = 1.0
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.fetch = fetch
        self.refetch_interval = refetch_interval
        self.jwks_uri: str | None = None
        self.keys: KeySet | None = None
        self.fetched_at = 0.0
        self.expires_at = 0.0
        self.fetch_count = 0
        self._lock = asyncio.Lock()

    async def key_set(self, kid: str) -> KeySet:
        """Keys that should include `kid`: cached, or refetched once if it is new."""
        async with self._lock:
            now = time.monotonic()
            if self.keys is None:
                await self._refresh(now)
            elif now >= self.expires_at or (
                not _has_kid(self.keys, kid)
                and now - self.fetched_at >= self.refetch_interval
            ):
                try:
                    await self._refresh(now)
                except UnavailableError:
                    # Keep verifying with the keys we have while the issuer is
                    # unreachable; try again after the interval, not per request.
                    self.fetched_at = now
                    self.expires_at = now + self.refetch_interval
            assert self.keys is not None
            return self.keys

    async def _refresh(self, now: float) -> None:
        if self.jwks_uri is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            metadata, _ = await self.fetch(url)
            if metadata.get("issuer") != self.issuer:  # RFC 8414 §3.3
                raise UnavailableError("discovery document names another issuer")
            self.jwks_uri = str(metadata["jwks_uri"])
        document, max_age = await self.fetch(self.jwks_uri)
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise UnavailableError(f"unusable key set: {exc}") from exc
        self.keys = keys
        self.fetch_count += 1
        self.fetched_at = now
        self.expires_at = now + (DEFAULT_MAX_AGE if max_age is None else max_age)


class Verifier:
    def __init__(self, issuer: str, audience: str, keys: KeyCache) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.keys = keys

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid access token; ValueError saying why not."""
        header = _header(token)
        if header.get("alg") not in ALGORITHMS:
            raise ValueError("algorithm not allowed")
        if str(header.get("typ", "")).lower() != ACCESS_TOKEN_TYP:
            raise ValueError("not an access token")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise ValueError("no kid")
        keys = await self.keys.key_set(kid)
        try:
            decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
            # jwt.decode checks the signature only: the claims are checked here.
            jwt.JWTClaimsRegistry(
                now=int(time.time()),
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise ValueError(f"invalid token: {type(exc).__name__}") from None
        return dict(decoded.claims)


def _header(token: str) -> dict[str, Any]:
    try:
        segment = token.split(".")[0]
        header = json.loads(
            base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        )
    except (ValueError, UnicodeDecodeError):
        raise ValueError("malformed token") from None
    if not isinstance(header, dict):
        raise ValueError("malformed token")
    return header


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys)


def _challenge(
    status: int, error: str, description: str, scope: str = ""
) -> HTTPException:
    params = f'realm="api", error="{error}", error_description="{description}"'
    if scope:
        params += f', scope="{scope}"'
    return HTTPException(
        status, description, headers={"WWW-Authenticate": f"Bearer {params}"}
    )


def create_app(
    issuer: str,
    audience: str | None = None,
    *,
    fetch: Fetch = fetch_json,
    refetch_interval: float = 1.0,
) -> FastAPI:
    """The API; tokens must name `audience` (default: the issuer, its default)."""
    keys = KeyCache(issuer, fetch=fetch, refetch_interval=refetch_interval)
    verifier = Verifier(issuer, audience or issuer.rstrip("/"), keys)
    app = FastAPI(title="Example resource server")
    app.state.keys = keys

    async def claims(request: Request) -> dict[str, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            challenge = {"WWW-Authenticate": 'Bearer realm="api"'}
            raise HTTPException(401, "bearer token required", headers=challenge)
        try:
            return await verifier.verify(token.strip())
        except UnavailableError:
            raise HTTPException(503, "the token issuer is unreachable") from None
        except ValueError:
            raise _challenge(
                401, "invalid_token", "the access token is invalid"
            ) from None

    Claims = Annotated[dict[str, Any], Depends(claims)]

    @app.get("/hello")
    async def hello(token: Claims) -> dict[str, Any]:
        """Any valid access token."""
        return {"sub": token["sub"], "client_id": token.get("client_id")}

    @app.get("/reports")
    async def reports(token: Claims) -> dict[str, Any]:
        """Needs the `reports` scope."""
        if REPORTS_SCOPE not in str(token.get("scope", "")).split():
            raise _challenge(
                403, "insufficient_scope", "needs scope reports", REPORTS_SCOPE
            )
        return {"reports": ["q1", "q2"], "for": token["sub"]}

    return app


app = create_app(
    os.environ.get("AUTH_ISSUER", "http://localhost:8000"),
    os.environ.get("RS_AUDIENCE"),
)
