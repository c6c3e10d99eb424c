"""Resource owner password credentials grant (RFC 6749 §4.3)."""

from authserver.core.exceptions import InvalidGrantError, InvalidRequestError
from authserver.models import Client
from authserver.schemas.token import TokenForm, TokenResponse
from authserver.services.grants.common import (
    GrantContext,
    issues_refresh_tokens,
    mint_response,
    new_refresh_record,
    requested_scopes,
    scopes_for_user,
)

GRANT_TYPE = "password"


async def handle(form: TokenForm, client: Client, ctx: GrantContext) -> TokenResponse:
    if not form.username or form.password is None:
        raise InvalidRequestError("username and password are required")
    scopes = requested_scopes(form.scope, client)

    user = await ctx.users.get_by_username(form.username)
    # End the transaction before the slow hash: on SQLite it holds the one
    # write lock, and no connection should idle in a transaction for 200 ms.
    await ctx.session.commit()
    if user is None:
        await ctx.hasher.burn(form.password)
        raise InvalidGrantError("invalid username or password", detail="unknown user")
    valid, new_hash = await ctx.hasher.verify(form.password, user.password_hash)
    if not valid or not user.is_active:
        reason = "wrong password" if not valid else "disabled user"
        raise InvalidGrantError(
            "invalid username or password", detail=f"{reason} {user.id}"
        )
    scopes = scopes_for_user(scopes, user, explicit=form.scope is not None)

    if new_hash is not None:
        await ctx.users.upgrade_password_hash(
            user, old=user.password_hash, new=new_hash
        )
    refresh = None
    if issues_refresh_tokens(client):
        refresh = new_refresh_record(
            ctx, client, user=user, scopes=scopes, auth_time=ctx.now
        )
        await ctx.refresh_tokens.add(refresh)
    response = mint_response(
        ctx, client, user=user, scopes=scopes, auth_time=ctx.now, refresh=refresh
    )
    await ctx.session.commit()
    return response
