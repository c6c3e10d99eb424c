"""authorization_code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6).

A code is single use: the conditional UPDATE in `consume` lets exactly one of
two concurrent redemptions through, and a code that comes back after it was
used revokes everything it issued (RFC 6749 §4.1.2, RFC 9700 §4.2.4): it leaked.
The family it opens is bound to the browser session that signed in, so that
signing out revokes it (services.sessions); a code whose session has ended
is refused.
"""

import logging
from typing import NoReturn

from authserver.core.exceptions import InvalidGrantError, InvalidRequestError
from authserver.core.security import opaque_token_hash, pkce_s256_matches
from authserver.crud.authorization import AuthorizationCodeRepository
from authserver.crud.login_session import LoginSessionRepository
from authserver.models import AuthorizationCode, Client
from authserver.schemas.token import TokenForm, TokenResponse
from authserver.services import audit
from authserver.services.clients import still_allowed
from authserver.services.families import revoke_family_id
from authserver.services.grants.common import GrantContext, issue_login_tokens

GRANT_TYPE = "authorization_code"
INVALID = "the authorization code is invalid, expired or already used"


async def handle(form: TokenForm, client: Client, ctx: GrantContext) -> TokenResponse:
    if not form.code or not form.redirect_uri or not form.code_verifier:
        raise InvalidRequestError("code, redirect_uri and code_verifier are required")
    codes = AuthorizationCodeRepository(ctx.session)
    code = await codes.get_by_hash(opaque_token_hash(form.code))
    if code is None or code.client_id != client.id:
        raise InvalidGrantError(INVALID, detail="unknown code or other client")
    if code.consumed_at is not None:
        await _replayed(ctx, client, code)
    if code.expires_at <= ctx.now:
        raise InvalidGrantError(INVALID, detail="code expired")
    if form.redirect_uri != code.redirect_uri:
        raise InvalidGrantError(INVALID, detail="redirect_uri differs")
    if code.redirect_uri not in client.redirect_uris:
        # Removed since the code was issued: whoever holds that URI now is
        # no longer trusted with the client's codes.
        raise InvalidGrantError(INVALID, detail="redirect_uri no longer registered")
    if not pkce_s256_matches(form.code_verifier, code.code_challenge):
        raise InvalidGrantError(INVALID, detail="code_verifier does not match")
    user = await ctx.users.get(code.user_id)
    if user is None or not user.is_active or user.password_changed_at > code.issued_at:
        raise InvalidGrantError(INVALID, detail="user disabled or re-passworded")
    if not await codes.consume(code, at=ctx.now):
        await _replayed(ctx, client, code)  # a concurrent redemption won
    if await _signed_out(ctx, code):
        raise InvalidGrantError(INVALID, detail="its session has ended since")

    scopes = still_allowed(code.scope, client)
    response = await issue_login_tokens(
        ctx,
        client,
        user_id=user.id,
        scopes=scopes,
        auth_time=code.auth_time,
        family_id=code.family_id,
        nonce=code.nonce,
        login_session_id=code.session_id,
    )
    await audit.record(
        ctx.session,
        "authorization_code_redeemed",
        subject=str(user.id),
        client_id=client.client_id,
        family_id=str(code.family_id),
        level=logging.DEBUG,
    )
    await ctx.uow.commit()
    return response


async def _signed_out(ctx: GrantContext, code: AuthorizationCode) -> bool:
    """Whether the browser session that signed in has ended: its end revoked
    what it had signed in to, and this code must not add to that. Its row
    stays locked until the exchange commits, so a logout meanwhile waits, and
    then revokes the family this exchange makes."""
    if code.session_id is None:
        return False
    login = await LoginSessionRepository(ctx.session).hold(code.session_id)
    # A purged session had expired, not ended: expiry ends no tokens.
    return login is not None and login.ended_at is not None


async def _replayed(
    ctx: GrantContext, client: Client, code: AuthorizationCode
) -> NoReturn:
    await revoke_family_id(
        ctx.session,
        code.family_id,
        user_id=code.user_id,
        at=ctx.now,
        event="authorization_code_reuse_detected",
        client_id=client.client_id,
        level=logging.WARNING,
    )
    await ctx.uow.commit()
    raise InvalidGrantError(INVALID, detail=f"replayed code of family {code.family_id}")
