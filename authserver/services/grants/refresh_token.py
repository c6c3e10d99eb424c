"""refresh_token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14).

Every use rotates: the presented token is marked used by one conditional UPDATE
and exactly one child is minted (services.refresh.rotation). A client whose
answer was lost may present the same token again within
AUTH_REFRESH_RETRY_WINDOW and gets the very same answer; any other second use
is reuse, and the whole family is revoked (services.refresh.reuse).
"""

from authserver.core.exceptions import InvalidGrantError, InvalidRequestError
from authserver.models import Client
from authserver.schemas.token import TokenForm, TokenResponse
from authserver.services.grants.common import GrantContext
from authserver.services.refresh import rotation
from authserver.services.refresh.checks import INVALID, verified_claims
from authserver.services.refresh.reuse import retry_or_reuse

GRANT_TYPE = "refresh_token"


async def handle(form: TokenForm, client: Client, ctx: GrantContext) -> TokenResponse:
    if not form.refresh_token:
        raise InvalidRequestError("refresh_token is required")
    presented = form.refresh_token
    claims = verified_claims(ctx.tokens, presented, client, now=ctx.now)

    # The usual case in one round trip: the token's claims say what its record
    # holds, and the rotating statement checks what may have changed since.
    planned = rotation.from_claims(claims, form.scope, client)
    if planned is not None:
        response = await rotation.rotate(ctx, client, planned)
        if response is not None:
            return response

    # It matched nothing (or the scope was too wide): read the record to say why.
    await ctx.uow.autocommit()
    jti = str(claims["jti"])
    state = await ctx.refresh_tokens.get_state(jti, at=ctx.now)
    if state is None or state.record.client_id != client.id:
        raise InvalidGrantError(INVALID, detail="unknown jti or deleted user")
    record = state.record
    if record.rotated_at is not None or record.revoked_at is not None:
        return await retry_or_reuse(ctx, client, claims, presented, form.scope)
    if not state.live:
        raise InvalidGrantError(
            INVALID, detail="expired, family revoked or ended, or owner disabled"
        )
    # Live: the owner lost the admin scope, or the scope asked for is too wide.
    planned = rotation.from_record(state, claims, form.scope, client)
    response = await rotation.rotate(ctx, client, planned)
    if response is None:
        # A concurrent request rotated it first (it has committed by now).
        return await retry_or_reuse(ctx, client, claims, presented, form.scope)
    return response
