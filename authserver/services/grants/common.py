"""Steps every grant shares: the context, scope decisions, minting a response."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession

from authserver.core.exceptions import InvalidScopeError
from authserver.core.lockout import LockPolicy
from authserver.crud.client import ClientRepository
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.rotation_batch import RotationRow
from authserver.crud.user import UserRepository
from authserver.db.rotation_batcher import RotationBatcher
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import Client, RefreshToken, TokenFamily
from authserver.schemas.scope import parse_scope
from authserver.schemas.token import TokenResponse
from authserver.services.clients import ClientCache
from authserver.services.passwords import PasswordHasher
from authserver.services.tokens import TokenService, seconds

ADMIN_SCOPE = "admin"
OPENID_SCOPE = "openid"


@dataclass
class GrantContext:
    """Everything a grant handler needs, built once per request.

    The unit of work opens its session, and the repositories are made, on
    first use: a client credentials grant for a cached client needs no
    database at all.
    """

    uow: UnitOfWork
    rotation_batcher: RotationBatcher[RotationRow] | None
    client_cache: ClientCache | None
    tokens: TokenService
    hasher: PasswordHasher
    refresh_ttl: timedelta
    refresh_max_lifetime: timedelta
    retry_window: timedelta
    lock_policy: LockPolicy
    now: datetime

    @property
    def session(self) -> AsyncSession:
        return self.uow.session

    @cached_property
    def users(self) -> UserRepository:
        return UserRepository(self.session)

    @cached_property
    def clients(self) -> ClientRepository:
        return ClientRepository(self.session)

    @cached_property
    def refresh_tokens(self) -> RefreshTokenRepository:
        return RefreshTokenRepository(self.session)

    async def rotate_batched(self, row: RotationRow) -> bool | None:
        """The rotation, in a statement shared with concurrent requests' on a
        connection of the batcher's (PostgreSQL), so this request needs no
        session for it; None when there is no batcher or the batch failed:
        then run it alone (refresh_tokens.rotate_into)."""
        if self.rotation_batcher is None:
            return None
        return await self.rotation_batcher.rotate(row)

    async def find_client(self, client_id: str) -> Client | None:
        return await self.clients.get_by_client_id(client_id)


def requested_scopes(value: str | None, client: Client) -> list[str]:
    """The scopes asked for, or the client's defaults; InvalidScopeError if not allowed."""
    if value is None:
        return list(client.scopes)
    scopes = parse_scope(value)
    if scopes is None:
        raise InvalidScopeError("malformed scope")
    unknown = [s for s in scopes if s not in client.scopes]
    if unknown:
        raise InvalidScopeError(
            "scope not allowed for this client", detail=f"scopes {unknown}"
        )
    return scopes


def scopes_for_user(scopes: list[str], *, is_admin: bool, explicit: bool) -> list[str]:
    """Drop what the user may not hold; asking for it explicitly is an error."""
    if ADMIN_SCOPE in scopes and not is_admin:
        if explicit:
            raise InvalidScopeError("scope not allowed for this user")
        return [s for s in scopes if s != ADMIN_SCOPE]
    return scopes


def mint_response(
    ctx: GrantContext,
    client: Client,
    *,
    user_id: uuid.UUID,
    scopes: list[str],
    auth_time: datetime,
    family_id: uuid.UUID,
    family_expires_at: datetime,
    refresh: RefreshToken | None,
    nonce: str | None = None,
    login_session_id: uuid.UUID | None = None,
    rotation_of: datetime | None = None,
) -> TokenResponse:
    """Sign the access token, the refresh token (when given) and the ID token.

    Every token of a user names its family (`sid`): revoking the family, which
    disabling, deleting or re-passwording the user and ending the login session
    it came from do, ends them all. A family made by a browser sign-in carries
    its login session in every refresh token, so the ID tokens its refreshes
    mint name the same session (`sid`, OIDC Core §12.2).

    A rotation's answer (`rotation_of`: the moment it rotated) is a function
    of its records: every timestamp is that moment and the access and ID
    tokens' ids derive from the new refresh token's, so signing it again for
    a retry (services.refresh.reuse) gives the very same tokens (RS256 and
    HS256 signatures are deterministic).
    """
    now = rotation_of or ctx.now
    derived = refresh.jti if rotation_of is not None and refresh is not None else None
    scope = " ".join(scopes)
    subject = str(user_id)
    access = ctx.tokens.mint_access(
        subject=subject,
        client_id=client.client_id,
        scope=scope,
        audience=client.audience,
        now=now,
        client_uuid=str(client.id),
        session_id=str(family_id),
        jti=derived_jti(derived, "access") if derived else None,
    )
    response = TokenResponse(
        access_token=access.token,
        expires_in=seconds(access.expires_at - now),
        scope=scope,
    )
    if refresh is not None:
        response.refresh_token = ctx.tokens.mint_refresh(
            jti=refresh.jti,
            subject=subject,
            client_id=client.client_id,
            scope=refresh.scope,
            expires_at=refresh.expires_at,
            now=now,
            family_id=str(family_id),
            auth_time=refresh.auth_time,
            family_expires_at=family_expires_at,
            login_session_id=str(login_session_id) if login_session_id else None,
        ).token
    if OPENID_SCOPE in scopes:
        response.id_token = ctx.tokens.mint_id(
            subject=subject,
            client_id=client.client_id,
            auth_time=auth_time,
            now=now,
            nonce=nonce,
            session_id=str(login_session_id) if login_session_id else None,
            jti=derived_jti(derived, "id") if derived else None,
        ).token
    return response


# Ids derived from a unique random one are unique too; they need not be
# secret (the refresh token that names the source id is its holder's).
_DERIVED_JTI = uuid.UUID("5d7c2f4e-8a51-4c1b-9f0e-2b6a3c9d1e47")


def derived_jti(refresh_jti: str, kind: str) -> str:
    """The id of the `kind` token ("access", "id") a rotation into the refresh
    token `refresh_jti` issues."""
    return str(uuid.uuid5(_DERIVED_JTI, f"{kind}:{refresh_jti}"))


def new_family(
    ctx: GrantContext,
    client: Client,
    user_id: uuid.UUID,
    *,
    family_id: uuid.UUID | None = None,
    login_session_id: uuid.UUID | None = None,
) -> TokenFamily:
    """The family of a new login (not yet stored); an authorization code
    names its family when it is issued (`family_id`), and the browser
    session that signed in (`login_session_id`), whose end revokes it."""
    return TokenFamily(
        id=family_id or uuid.uuid4(),
        user_id=user_id,
        client_id=client.id,
        created_at=ctx.now,
        expires_at=ctx.now + ctx.refresh_max_lifetime,
        session_id=login_session_id,
    )


def new_refresh_record(
    ctx: GrantContext,
    client: Client,
    *,
    user_id: uuid.UUID,
    scopes: list[str],
    auth_time: datetime,
    family_id: uuid.UUID,
    family_expires_at: datetime,
) -> RefreshToken:
    """The next refresh-token row of a family (the first one at login)."""
    return RefreshToken(
        jti=str(uuid.uuid4()),
        family_id=family_id,
        user_id=user_id,
        client_id=client.id,
        scope=" ".join(scopes),
        auth_time=auth_time,
        issued_at=ctx.now,
        expires_at=min(ctx.now + ctx.refresh_ttl, family_expires_at),
    )


def issues_refresh_tokens(client: Client) -> bool:
    return "refresh_token" in client.grant_types


async def issue_login_tokens(
    ctx: GrantContext,
    client: Client,
    *,
    user_id: uuid.UUID,
    scopes: list[str],
    auth_time: datetime,
    family_id: uuid.UUID | None = None,
    nonce: str | None = None,
    login_session_id: uuid.UUID | None = None,
) -> TokenResponse:
    """A login's first tokens: its family and first refresh record stored (in
    the caller's transaction), the response signed."""
    family = new_family(
        ctx, client, user_id, family_id=family_id, login_session_id=login_session_id
    )
    await ctx.refresh_tokens.add_family(family)
    refresh = None
    if issues_refresh_tokens(client):
        refresh = new_refresh_record(
            ctx,
            client,
            user_id=user_id,
            scopes=scopes,
            auth_time=auth_time,
            family_id=family.id,
            family_expires_at=family.expires_at,
        )
        await ctx.refresh_tokens.add(refresh)
    return mint_response(
        ctx,
        client,
        user_id=user_id,
        scopes=scopes,
        auth_time=auth_time,
        family_id=family.id,
        family_expires_at=family.expires_at,
        refresh=refresh,
        nonce=nonce,
        login_session_id=login_session_id,
    )
