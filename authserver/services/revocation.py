"""Token revocation (RFC 7009 §2).

The hint decides only which kind is tried first (§2.1: it is not trusted);
one this server does not know is ignored (§2.1: the server "MAY ignore this
parameter" and searches every type; unsupported_token_type, §2.2.1, is for a
type that cannot be revoked, and both of ours can).
Unknown, expired and already-dead tokens answer 200 (§2.2). A live token of
another client is refused with invalid_grant (§2.1: "the request is refused and
the client is informed"), and nothing is revoked.
"""

from datetime import UTC, datetime

from authserver.core.exceptions import (
    InvalidGrantError,
    InvalidTokenError,
    TokenError,
)
from authserver.models import Client
from authserver.services import audit
from authserver.services.families import revoke_family
from authserver.services.token_state import (
    TokenContext,
    access_claims,
    refresh_claims,
    validate_access,
)

OTHER_CLIENT = "the token was not issued to this client"


async def revoke(
    ctx: TokenContext, token: str, hint: str | None, client: Client
) -> None:
    """Revoke `token` if it is a live token of `client`; commit."""
    attempts = [_revoke_access, _revoke_refresh]
    if hint == "refresh_token":
        attempts.reverse()
    for attempt in attempts:
        if await attempt(ctx, token, client):
            break
    await ctx.uow.commit()


async def _revoke_access(ctx: TokenContext, token: str, client: Client) -> bool:
    """Deny-list an access token; False if `token` is no access token of ours."""
    try:
        claims = access_claims(ctx, token, audience=None)
    except TokenError:
        return False
    jti = str(claims["jti"])
    if claims.get("client_id") != client.client_id:
        try:
            await validate_access(ctx, token, audience=None)
        except InvalidTokenError:
            return True  # already dead: nothing to refuse or revoke
        raise InvalidGrantError(OTHER_CLIENT, detail=f"access token {jti}")
    expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    if await ctx.revoked.add(jti, expires_at=expires_at, at=ctx.now):
        await audit.record(
            ctx.session,
            "access_token_revoked",
            subject=str(claims.get("sub")),
            client_id=client.client_id,
            jti=jti,
        )
    return True


async def _revoke_refresh(ctx: TokenContext, token: str, client: Client) -> bool:
    """Revoke a refresh token's whole family; False if it is no refresh token of ours."""
    try:
        claims = refresh_claims(ctx, token)
    except TokenError:
        return False
    state = await ctx.refresh_tokens.get_state(str(claims["jti"]), at=ctx.now)
    if state is None:
        return True  # purged or never stored: nothing left to revoke
    record = state.record
    if record.client_id != client.id:
        if not state.live:
            return True
        raise InvalidGrantError(OTHER_CLIENT, detail=f"refresh token {record.jti}")
    await revoke_family(
        ctx.session,
        record,
        at=ctx.now,
        event="refresh_family_revoked",
        client_id=client.client_id,
    )
    return True
