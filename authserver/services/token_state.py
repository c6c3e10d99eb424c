"""Is a token we issued still good? Shared by the bearer dependency, introspection
and revocation (RFC 6750, RFC 7662, RFC 7009).

A signature and `exp` are not enough. An access token dies early when it is
revoked (its jti is deny-listed), when its client record is gone (a client made
again under the same client_id is another record: `client_uuid`), and, for a
user's token, when its user is disabled or deleted or its family (`sid`, the
login) is revoked, which disabling, deleting and re-passwording the user do.
What it is bound to was fixed at issue, so re-enabling a user revives nothing.
Whether a refresh token is live is crud.liveness's rule, asked of the database.
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
from authserver.crud.token_family import TokenFamilyRepository
from authserver.crud.user import UserRepository
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import Client, User
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
    families: TokenFamilyRepository
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
            families=TokenFamilyRepository(session),
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
        ctx.tokens.keys(ctx.now).verify_keys,
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
    if await ctx.revoked.any_of([jti]):
        raise InvalidTokenError(INVALID, detail=f"revoked access token {jti}")
    client_id = str(claims.get("client_id", ""))
    client = await ctx.clients.get_by_client_id(client_id)
    if client is None or str(client.id) != claims.get("client_uuid"):
        raise InvalidTokenError(INVALID, detail=f"client of {jti} is gone")
    user = None
    # The client_credentials grant names the client as the subject. Deciding
    # by equality fails safe: such a token never reaches a user's account, even
    # if a client_id looked like a user id.
    if subject != client_id:
        user = await _live_user(ctx, subject, claims.get("sid"))
        if user is None:
            raise InvalidTokenError(INVALID, detail=f"user of {jti} is no longer valid")
    scopes = frozenset(str(claims.get("scope", "")).split())
    return AccessGrant(claims=claims, scopes=scopes, client=client, user=user)


def refresh_claims(ctx: TokenContext, token: str) -> dict[str, Any]:
    """Claims of a refresh JWT we signed, unexpired; TokenError otherwise."""
    return ctx.tokens.verify_refresh(token, now=ctx.now)


async def _live_user(ctx: TokenContext, subject: str, sid: object) -> User | None:
    try:
        user_id, family_id = uuid.UUID(subject), uuid.UUID(str(sid))
    except ValueError:  # no sid: no token of ours for a user lacks one
        return None
    return await ctx.families.live_user(family_id, user_id, at=ctx.now)
