"""Resource owner password credentials grant (RFC 6749 §4.3)."""

from authserver.core.exceptions import InvalidRequestError
from authserver.models import Client
from authserver.schemas.token import TokenForm, TokenResponse
from authserver.services.grants.common import (
    GrantContext,
    issues_refresh_tokens,
    mint_response,
    new_family,
    new_refresh_record,
    requested_scopes,
    scopes_for_user,
)
from authserver.services.login import sign_in

GRANT_TYPE = "password"


async def handle(form: TokenForm, client: Client, ctx: GrantContext) -> TokenResponse:
    if not form.username or form.password is None:
        raise InvalidRequestError("username and password are required")
    scopes = requested_scopes(form.scope, client)

    user = await sign_in(
        ctx.uow,
        ctx.hasher,
        form.username,
        form.password,
        now=ctx.now,
        lock_policy=ctx.lock_policy,
        client_id=client.client_id,
    )
    scopes = scopes_for_user(
        scopes, is_admin=user.is_admin, explicit=form.scope is not None
    )

    family = new_family(ctx, client, user.id)
    await ctx.refresh_tokens.add_family(family)
    refresh = None
    if issues_refresh_tokens(client):
        refresh = new_refresh_record(
            ctx,
            client,
            user_id=user.id,
            scopes=scopes,
            auth_time=ctx.now,
            family_id=family.id,
            family_expires_at=family.expires_at,
        )
        await ctx.refresh_tokens.add(refresh)
    response = mint_response(
        ctx,
        client,
        user_id=user.id,
        scopes=scopes,
        auth_time=ctx.now,
        family_id=family.id,
        family_expires_at=family.expires_at,
        refresh=refresh,
    )
    await ctx.uow.commit()
    return response
