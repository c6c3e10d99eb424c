"""Is a token we issued still good? Shared by the bearer dependency, introspection
and revocation (RFC 6750, RFC 7662, RFC 7009).

A signature and `exp` are not enough: an access token dies early when it is
revoked (its jti is deny-listed), when its user is disabled, deleted or changed
their password after it was issued, or when its client is deleted. A refresh
token is alive while its record is neither rotated nor revoked.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from authserver.core.exceptions import InvalidTokenError, TokenError
from authserver.core.security import ACCESS_TOKEN_TYP, verify_jwt
from authserver.crud.client import ClientRepository
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.revoked_token import RevokedTokenRepository
from authserver.crud.user import UserRepository
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import Client, RefreshToken, User
from authserver.services.tokens import TokenService

INVALID = "the access token is invalid, expired or revoked"


@dataclass(frozen=True)
class AccessGrant:
    """What a live access token grants: to whom, through which client, what."""

    claims: dict[str, Any]
    scopes: frozenset[str]
    client: Client
    # None for a client_credentials token: it acts for the client, not a user.
    user: User | None


@dataclass
class TokenContext:
    """Everything the checks need, built once per request."""

    uow: UnitOfWork
    tokens: TokenService
    users: UserRepository
    clients: ClientRepository
    refresh_tokens: RefreshTokenRepository
    revoked: RevokedTokenRepository
    now: datetime

    @property
    def session(self) -> AsyncSession:
        return self.uow.session

    @classmethod
    def create(
        cls, uow: UnitOfWork, tokens: TokenService, now: datetime
    ) -> "TokenContext":
        session = uow.session
        return cls(
            uow=uow,
            tokens=tokens,
            users=UserRepository(session),
            clients=ClientRepository(session),
            refresh_tokens=RefreshTokenRepository(session),
            revoked=RevokedTokenRepository(session),
            now=now,
        )


def access_claims(
    ctx: TokenContext, token: str, *, audience: str | None
) -> dict[str, Any]:
    """Claims of an access JWT we signed, unexpired; TokenError otherwise.

    `audience=None` accepts any audience we issue for.
    """
    return verify_jwt(
        token,
        ctx.tokens.keystore.view(ctx.now).verify_keys,
        typ=ACCESS_TOKEN_TYP,
        issuer=ctx.tokens.issuer,
        audience=audience,
        now=int(ctx.now.timestamp()),
    )


async def validate_access(
    ctx: TokenContext, token: str, *, audience: str | None
) -> AccessGrant:
    """The grant of a live access token, else InvalidTokenError."""
    try:
        claims = access_claims(ctx, token, audience=audience)
    except TokenError as exc:
        raise InvalidTokenError(INVALID, detail=str(exc)) from None
    jti, subject = str(claims["jti"]), str(claims["sub"])
    # One query for the token itself and the refresh family it came from.
    deny_keys = [jti, str(claims["sid"])] if claims.get("sid") else [jti]
    if await ctx.revoked.any_of(deny_keys):
        raise InvalidTokenError(INVALID, detail=f"revoked access token {jti}")
    client_id = str(claims.get("client_id", ""))
    client = await ctx.clients.get_by_client_id(client_id)
    if client is None:
        raise InvalidTokenError(INVALID, detail=f"client of {jti} is gone")
    user = None
    # The client_credentials grant names the client as the subject. Deciding
    # by equality fails safe: such a token never reaches a user's account, even
    # if a client_id looked like a user id.
    if subject != client_id:
        user = await _live_user(ctx, subject, issued_at=int(claims["iat"]))
        if user is None:
            raise InvalidTokenError(INVALID, detail=f"user of {jti} is no longer valid")
    scopes = frozenset(str(claims.get("scope", "")).split())
    return AccessGrant(claims=claims, scopes=scopes, client=client, user=user)


def refresh_claims(ctx: TokenContext, token: str) -> dict[str, Any]:
    """Claims of a refresh JWT we signed, unexpired; TokenError otherwise."""
    return ctx.tokens.verify_refresh(token, now=ctx.now)


async def live_refresh_user(ctx: TokenContext, record: RefreshToken) -> User | None:
    """The user of a refresh token that could still be redeemed, else None."""
    if record.rotated_at is not None or record.revoked_at is not None:
        return None
    if record.expires_at <= ctx.now or record.family_expires_at <= ctx.now:
        return None
    user = await ctx.users.get(record.user_id)
    if user is None or not user.is_active:
        return None
    if user.password_changed_at > record.issued_at:
        return None
    return user


async def _live_user(ctx: TokenContext, subject: str, *, issued_at: int) -> User | None:
    try:
        user_id = uuid.UUID(subject)
    except ValueError:
        return None
    user = await ctx.users.get(user_id)
    if user is None or not user.is_active:
        return None
    # `iat` has whole seconds: a token minted in the same second as the change
    # survives, so logging in right after a password change works at once.
    if int(user.password_changed_at.timestamp()) > issued_at:
        return None
    return user
