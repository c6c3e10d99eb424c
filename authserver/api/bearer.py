"""Bearer-token policy for protected routes (RFC 6750): which token, which scope,
which kind of owner a route needs, and who the audit records name."""

import re
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from authserver.api.deps import SettingsDep, TokenContextDep
from authserver.core.context import annotate_request
from authserver.core.exceptions import (
    InsufficientScopeError,
    InvalidTokenError,
    MissingTokenError,
)
from authserver.schemas.token import MAX_TOKEN
from authserver.services.grants.common import ADMIN_SCOPE
from authserver.services.token_state import INVALID, AccessGrant, validate_access

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

# Only for the OpenAPI schema (a "bearer" security scheme on every protected
# route); BearerAuth reads the header itself to answer as RFC 6750 §3 says.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An access token from this server's token endpoint.",
)
BearerSchemeDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def bearer_token(request: Request) -> str:
    """The access token of the Authorization header (RFC 6750 §2.1; no other way)."""
    values = request.headers.getlist("authorization")
    if not values:
        raise MissingTokenError("a bearer access token is required")
    scheme, _, token = values[0].partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise MissingTokenError("a bearer access token is required")
    if len(values) > 1 or len(token) > MAX_TOKEN or not B64TOKEN.fullmatch(token):
        raise InvalidTokenError(INVALID, detail="malformed bearer credentials")
    return token


class BearerAuth:
    """Dependency: the grant of a live access token that allows the route.

    401 invalid_token for a token that is malformed, forged, expired, revoked,
    meant for another audience, or whose user is disabled, deleted or changed
    their password since; 403 insufficient_scope when a scope is missing, when
    the route needs a user and the token is a client's own (client_credentials),
    or when it needs an admin and the user is not one (any more).
    """

    def __init__(
        self,
        scope: str | None = None,
        *,
        user: bool = False,
        admin: bool = False,
        any_audience: bool = False,
    ) -> None:
        self.scope = ADMIN_SCOPE if admin else scope
        self.user = user or admin
        self.admin = admin
        self.any_audience = any_audience

    async def __call__(
        self,
        request: Request,
        ctx: TokenContextDep,
        settings: SettingsDep,
        _scheme: BearerSchemeDep,
    ) -> AccessGrant:
        audience = None if self.any_audience else settings.audience
        grant = await validate_access(
            ctx, await bearer_token(request), audience=audience
        )
        if self.scope is not None and self.scope not in grant.scopes:
            raise InsufficientScopeError(
                f"this needs the scope {self.scope}", scope=self.scope
            )
        if self.admin and (grant.user is None or not grant.user.is_admin):
            raise InsufficientScopeError(
                "this needs an admin user's token", scope=ADMIN_SCOPE
            )
        if self.user and grant.user is None:
            raise InsufficientScopeError(
                "this needs a token issued to a user",
                detail=f"client token of {grant.client.client_id}",
            )
        # Audit records of what this request does name whose token it was.
        annotate_request(
            actor=(
                f"user:{grant.user.id}"
                if grant.user is not None
                else f"client:{grant.client.client_id}"
            )
        )
        return grant
