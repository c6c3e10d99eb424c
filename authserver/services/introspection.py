"""Token introspection (RFC 7662 §2).

Only confidential clients may ask (§2.1: no token scanning by anyone who knows
a client_id). Any of them may introspect any access token, which is what a
resource server does; a refresh token only by the client it was issued to.
Everything not live is exactly {"active": false} (§2.2), whatever the reason.
"""

from authserver.core.exceptions import InvalidClientError, InvalidTokenError, TokenError
from authserver.models import Client
from authserver.schemas.introspection import IntrospectionResponse
from authserver.services.clients import still_allowed
from authserver.services.grants.common import issues_refresh_tokens
from authserver.services.token_state import (
    TokenContext,
    refresh_claims,
    validate_access,
)

INACTIVE = IntrospectionResponse(active=False)


async def introspect(
    ctx: TokenContext, token: str, hint: str | None, client: Client
) -> IntrospectionResponse:
    """What `token` is, for an authenticated confidential client."""
    if client.is_public:
        raise InvalidClientError(
            "introspection needs client authentication",
            detail=f"public client {client.client_id} tried to introspect",
        )
    # An unknown hint is ignored (§2.1: the server MAY ignore it).
    checks = [_access, _refresh]
    if hint == "refresh_token":
        checks.reverse()
    for check in checks:
        response = await check(ctx, token, client)
        if response is not None:
            return response
    return INACTIVE


async def _access(
    ctx: TokenContext, token: str, client: Client
) -> IntrospectionResponse | None:
    try:
        grant = await validate_access(ctx, token, audience=None)
    except InvalidTokenError:
        return None
    claims = grant.claims
    return IntrospectionResponse(
        active=True,
        scope=" ".join(still_allowed(str(claims.get("scope", "")), grant.client)),
        client_id=grant.client.client_id,
        username=grant.user.username if grant.user else None,
        token_type="Bearer",
        exp=int(claims["exp"]),
        iat=int(claims["iat"]),
        sub=str(claims["sub"]),
        aud=str(claims["aud"]),
        iss=str(claims["iss"]),
        jti=str(claims["jti"]),
    )


async def _refresh(
    ctx: TokenContext, token: str, client: Client
) -> IntrospectionResponse | None:
    try:
        claims = refresh_claims(ctx, token)
    except TokenError:
        return None
    state = await ctx.refresh_tokens.get_state(str(claims["jti"]), at=ctx.now)
    if state is None or state.record.client_id != client.id or not state.live:
        return None
    if not issues_refresh_tokens(client):
        return None  # refused at the token endpoint (unauthorized_client)
    record = state.record
    return IntrospectionResponse(
        active=True,
        scope=" ".join(still_allowed(record.scope, client)),
        client_id=client.client_id,
        username=state.username,
        exp=int(claims["exp"]),
        iat=int(claims["iat"]),
        sub=str(claims["sub"]),
        aud=str(claims["aud"]),
        iss=str(claims["iss"]),
        jti=record.jti,
    )
