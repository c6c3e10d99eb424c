"""FastAPI dependencies: sessions, repositories, services and request parsing."""

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Protocol, TypeVar
from urllib.parse import parse_qsl, unquote_plus

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.core.config import Settings
from authserver.core.context import current_origin
from authserver.core.exceptions import (
    InsufficientScopeError,
    InvalidClientError,
    InvalidRequestError,
    InvalidTokenError,
    UnauthorizedError,
)
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.user import UserRepository
from authserver.schemas.introspection import IntrospectionForm
from authserver.schemas.revocation import RevocationForm
from authserver.schemas.token import MAX_TOKEN, TokenForm
from authserver.services.clients import ClientCredentials
from authserver.services.grants.common import ADMIN_SCOPE
from authserver.services.keystore import KeyStore
from authserver.services.passwords import PasswordHasher
from authserver.services.token_state import (
    INVALID,
    AccessGrant,
    TokenContext,
    validate_access,
)
from authserver.services.tokens import TokenService
from authserver.services.users import UserService

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# No OAuth request has more than a handful of parameters.
MAX_FORM_FIELDS = 32


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.session_factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


# Every dependency is async: FastAPI runs a plain `def` one in a worker thread,
# a hop per dependency per request for no gain.
async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_keystore(request: Request) -> KeyStore:
    keystore: KeyStore = request.app.state.keystore
    return keystore


KeyStoreDep = Annotated[KeyStore, Depends(get_keystore)]


async def read_oauth_form(request: Request) -> dict[str, str]:
    """The form of an OAuth endpoint (see parse_oauth_form)."""
    return parse_oauth_form(request.headers.get("content-type"), await request.body())


def parse_oauth_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The form of an OAuth endpoint: urlencoded UTF-8, each parameter at most once.

    Empty parameters count as omitted (RFC 6749 §3.1).
    """
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise InvalidRequestError(f"the body must be {FORM_CONTENT_TYPE}")
    try:
        pairs = parse_qsl(
            body.decode(),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise InvalidRequestError("the body is not valid UTF-8") from None
    except ValueError:  # more fields than max_num_fields
        raise InvalidRequestError("too many parameters") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            # No parameter of ours holds one, and PostgreSQL text cannot.
            raise InvalidRequestError("parameters must not contain NUL characters")
        if name in params:
            raise InvalidRequestError(f"parameter {name[:40]} is repeated")
        params[name] = value
    return {name: value for name, value in params.items() if value != ""}


FormT = TypeVar("FormT", bound=BaseModel)


def validate_oauth_form(model: type[FormT], params: dict[str, str]) -> FormT:
    """The parameters as `model`; the first problem as invalid_request."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "request"
        if error["type"] == "missing":
            raise InvalidRequestError(f"{field} is required") from None
        raise InvalidRequestError(
            f"invalid parameter {field}", detail=error["msg"]
        ) from None


async def get_token_form(request: Request) -> TokenForm:
    return validate_oauth_form(TokenForm, await read_oauth_form(request))


TokenFormDep = Annotated[TokenForm, Depends(get_token_form)]


async def get_revocation_form(request: Request) -> RevocationForm:
    return validate_oauth_form(RevocationForm, await read_oauth_form(request))


RevocationFormDep = Annotated[RevocationForm, Depends(get_revocation_form)]


async def get_introspection_form(request: Request) -> IntrospectionForm:
    return validate_oauth_form(IntrospectionForm, await read_oauth_form(request))


IntrospectionFormDep = Annotated[IntrospectionForm, Depends(get_introspection_form)]


async def get_token_context(request: Request, session: SessionDep) -> TokenContext:
    tokens: TokenService = request.app.state.tokens
    return TokenContext.create(session, tokens, datetime.now(UTC))


TokenContextDep = Annotated[TokenContext, Depends(get_token_context)]


async def get_user_service(request: Request, session: SessionDep) -> UserService:
    hasher: PasswordHasher = request.app.state.hasher
    return UserService(UserRepository(session), RefreshTokenRepository(session), hasher)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]


class ClientAuthForm(Protocol):
    """A form that may carry client_secret_post credentials."""

    @property
    def client_id(self) -> str | None: ...

    @property
    def client_secret(self) -> str | None: ...


def client_credentials(
    request: Request, form: ClientAuthForm
) -> ClientCredentials | None:
    """The client credentials of a request, by exactly one method (RFC 6749 §2.3)."""
    header = request.headers.get("authorization")
    if header is None:
        if form.client_id is None:
            return None
        return ClientCredentials(form.client_id, form.client_secret)
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClientError(detail="unsupported authorization scheme")
    if form.client_secret is not None:
        raise InvalidRequestError("use one client authentication method, not two")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    # All ValueErrors: bad base64 (binascii.Error), a header value with
    # non-ASCII characters (b64decode refuses such a str), not UTF-8.
    except ValueError:
        raise InvalidClientError(detail="malformed basic credentials") from None
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep or not raw_id:
        raise InvalidClientError(detail="malformed basic credentials")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if "\x00" in client_id or "\x00" in secret:
        raise InvalidClientError(detail="NUL in basic credentials")
    if form.client_id is not None and form.client_id != client_id:
        raise InvalidRequestError("client_id in the body differs from the credentials")
    return ClientCredentials(client_id, secret)


# Only for the OpenAPI schema (a "bearer" security scheme on every protected
# route); BearerAuth reads the header itself to answer as RFC 6750 §3 says.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An access token from this server's token endpoint.",
)
BearerSchemeDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def bearer_token(request: Request) -> str:
    """The access token of the Authorization header (RFC 6750 §2.1; no other way)."""
    values = request.headers.getlist("authorization")
    if not values:
        raise UnauthorizedError("a bearer access token is required")
    scheme, _, token = values[0].partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("a bearer access token is required")
    if len(values) > 1 or len(token) > MAX_TOKEN or not B64TOKEN.fullmatch(token):
        raise InvalidTokenError(INVALID, detail="malformed bearer credentials")
    return token


class BearerAuth:
    """Dependency: the grant of a live access token that allows the route.

    401 invalid_token for a token that is malformed, forged, expired, revoked,
    meant for another audience, or whose user is disabled, deleted or changed
    their password since; 403 insufficient_scope when a scope is missing, when
    the route needs a user and the token is a client's own (client_credentials),
    or when it needs an admin and the user is not one (any more).
    """

    def __init__(
        self,
        scope: str | None = None,
        *,
        user: bool = False,
        admin: bool = False,
        any_audience: bool = False,
    ) -> None:
        self.scope = ADMIN_SCOPE if admin else scope
        self.user = user or admin
        self.admin = admin
        self.any_audience = any_audience

    async def __call__(
        self,
        request: Request,
        ctx: TokenContextDep,
        settings: SettingsDep,
        _scheme: BearerSchemeDep,
    ) -> AccessGrant:
        audience = None if self.any_audience else settings.audience
        grant = await validate_access(
            ctx, await bearer_token(request), audience=audience
        )
        if self.scope is not None and self.scope not in grant.scopes:
            raise InsufficientScopeError(
                f"this needs the scope {self.scope}", scope=self.scope
            )
        if self.admin and (grant.user is None or not grant.user.is_admin):
            raise InsufficientScopeError(
                "this needs an admin user's token", scope=ADMIN_SCOPE
            )
        if self.user and grant.user is None:
            raise InsufficientScopeError(
                "this needs a token issued to a user",
                detail=f"client token of {grant.client.client_id}",
            )
        # Audit records of what this request does name whose token it was.
        actor = (
            f"user:{grant.user.id}"
            if grant.user is not None
            else f"client:{grant.client.client_id}"
        )
        current_origin.set(replace(current_origin.get(), actor=actor))
        return grant


async def no_store(response: Response) -> None:
    """Responses with tokens or personal data must not be cached (RFC 6749 §5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
