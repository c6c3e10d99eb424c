"""JWKS (RFC 7517) and discovery (RFC 8414, OpenID Connect Discovery 1.0)."""

import json
import logging
from typing import Any

from fastapi import APIRouter, Request, Response

from authserver.api.deps import KeyStoreDep, SettingsDep, StateDep
from authserver.core.config import Settings
from authserver.core.security import ALLOWED_ALGS
from authserver.services.grants import GRANT_HANDLERS
from authserver.services.keystore import KeyStoreError, KeyView, SigningKeyStore

router = APIRouter(tags=["discovery"])
logger = logging.getLogger(__name__)

JSON = "application/json"
JWKS_TYPE = "application/jwk-set+json"
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
UNAVAILABLE = {"Cache-Control": "no-store", "Retry-After": "1"}


# These routes declare the documents (OpenAPI); the pipeline's dispatcher
# answers GETs and HEADs of them in StaticDocuments (api/static_documents.py),
# a fast path, with the same functions below.
@router.get("/.well-known/jwks.json", summary="Public signing keys (JWK Set)")
async def jwks(
    request: Request, keystore: KeyStoreDep, settings: SettingsDep
) -> Response:
    status, headers, body = jwks_answer(
        keystore, settings, request.headers.get("if-none-match")
    )
    return Response(body, status_code=status, headers=headers)


@router.get("/.well-known/openid-configuration", summary="OpenID Provider metadata")
async def openid_configuration(state: StateDep) -> Response:
    return Response(state.discovery_json, headers=discovery_headers(state.settings))


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="OAuth 2.0 Authorization Server metadata",
)
async def oauth_authorization_server(state: StateDep) -> Response:
    return Response(state.discovery_json, headers=discovery_headers(state.settings))


def discovery_headers(settings: Settings) -> dict[str, str]:
    """The metadata changes only with the configuration: cacheable like the JWKS."""
    max_age = int(settings.jwks_max_age.total_seconds())
    return {"Content-Type": JSON, "Cache-Control": f"public, max-age={max_age}"}


def jwks_answer(
    keystore: SigningKeyStore, settings: Settings, if_none_match: str | None
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the JWKS: cached bytes, ETag, 304 on a match."""
    try:
        view = keystore.view()
    except KeyStoreError as exc:
        return jwks_unavailable(exc)
    if etag_matches(if_none_match, view.etag):
        return 304, jwks_headers(view, settings), b""
    return (
        200,
        {**jwks_headers(view, settings), "Content-Type": JWKS_TYPE},
        view.jwks_json,
    )


def jwks_headers(view: KeyView, settings: Settings) -> dict[str, str]:
    """What a 200 and a 304 of the JWKS share: caching and the validator."""
    max_age = int(settings.jwks_max_age.total_seconds())
    return {"Cache-Control": f"public, max-age={max_age}", "ETag": view.etag}


def jwks_unavailable(exc: KeyStoreError) -> tuple[int, dict[str, str], bytes]:
    # The server's own fault, and one an operator fixes: 503 like
    # /health/ready, never a cacheable answer.
    logger.error("jwks_unavailable", extra={"error": str(exc)})
    body = json.dumps({"error": "temporarily_unavailable"}).encode()
    return 503, {**UNAVAILABLE, "Content-Type": JSON}, body


def discovery_document(settings: Settings) -> bytes:
    """The metadata, built once: every URL derives from AUTH_ISSUER."""
    issuer = settings.issuer
    document: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "grant_types_supported": sorted(GRANT_HANDLERS),
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        # Introspection answers confidential clients only (RFC 7662 §2.1).
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS[:2],
        "scopes_supported": ["openid", "profile", "email", "admin"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        # PKCE is required of every client, with S256 only (RFC 9700 §2.1.1).
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
        "prompt_values_supported": ["none", "login", "consent"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ALLOWED_ALGS,
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "preferred_username",
            "email",
            "email_verified",
        ],
        "service_documentation": f"{issuer}/docs",
        # Not registered metadata (RFC 8414 §2 allows more): the users API.
        "users_endpoint": f"{issuer}/api/v1/users",
    }
    return json.dumps(document, separators=(",", ":")).encode()


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag in candidates
