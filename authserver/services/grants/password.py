"""Resource owner password credentials grant (RFC 6749 §4.3)."""

from authserver.core.exceptions import InvalidRequestError
from authserver.models import Client
from authserver.schemas.token import TokenForm, TokenResponse
from authserver.services.grants.common import (
    GrantContext,
    issue_login_tokens,
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

    response = await issue_login_tokens(
        ctx, client, user_id=user.id, scopes=scopes, auth_time=ctx.now
    )
    await ctx.uow.commit()
    return response
