"""Resource owner password credentials grant (RFC 6749 §4.3)."""

from typing import NoReturn

from authserver.core.exceptions import InvalidGrantError, InvalidRequestError
from authserver.models import Client, User
from authserver.schemas.token import TokenForm, TokenResponse
from authserver.services import audit
from authserver.services.grants.common import (
    GrantContext,
    issues_refresh_tokens,
    mint_response,
    new_family,
    new_refresh_record,
    requested_scopes,
    scopes_for_user,
)
from authserver.services.users import check_password

GRANT_TYPE = "password"


async def handle(form: TokenForm, client: Client, ctx: GrantContext) -> TokenResponse:
    if not form.username or form.password is None:
        raise InvalidRequestError("username and password are required")
    scopes = requested_scopes(form.scope, client)

    user = await ctx.users.get_by_username(form.username)
    check = await check_password(
        ctx.uow,
        ctx.users,
        ctx.hasher,
        user,
        form.password,
        now=ctx.now,
        lock_policy=ctx.lock_policy,
    )
    if check.refusal is not None:
        await _refuse(ctx, client, user, check.refusal)
    assert user is not None  # an unknown user is a refusal
    scopes = scopes_for_user(
        scopes, is_admin=user.is_admin, explicit=form.scope is not None
    )

    if check.new_hash is not None:
        await ctx.users.upgrade_password_hash(
            user, old=user.password_hash, new=check.new_hash
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
    await audit.record(
        ctx.session, "login_succeeded", subject=str(user.id), client_id=client.client_id
    )
    await ctx.uow.commit()
    return response


async def _refuse(
    ctx: GrantContext, client: Client, user: User | None, reason: str
) -> NoReturn:
    """Record the failed login and answer with the one invalid_grant for all causes."""
    subject = str(user.id) if user else None
    await audit.login_failed(
        ctx.session, subject=subject, client_id=client.client_id, reason=reason
    )
    await ctx.uow.commit()
    raise InvalidGrantError(
        "invalid username or password", detail=f"{reason} {subject}"
    )
