"""FastAPI dependencies: sessions, repositories, services and request parsing."""

import base64
import binascii
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import Depends, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.core.config import Settings
from authserver.core.exceptions import InvalidClientError, InvalidRequestError
from authserver.crud.client import ClientRepository
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.user import UserRepository
from authserver.schemas.token import TokenForm
from authserver.services.clients import ClientCredentials
from authserver.services.grants.common import GrantContext
from authserver.services.keystore import KeyStore
from authserver.services.passwords import PasswordHasher
from authserver.services.tokens import TokenService

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.session_factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_keystore(request: Request) -> KeyStore:
    keystore: KeyStore = request.app.state.keystore
    return keystore


KeyStoreDep = Annotated[KeyStore, Depends(get_keystore)]


def get_grant_context(request: Request, session: SessionDep) -> GrantContext:
    state = request.app.state
    settings: Settings = state.settings
    tokens: TokenService = state.tokens
    hasher: PasswordHasher = state.hasher
    return GrantContext(
        session=session,
        users=UserRepository(session),
        clients=ClientRepository(session),
        refresh_tokens=RefreshTokenRepository(session),
        tokens=tokens,
        hasher=hasher,
        refresh_ttl=settings.refresh_token_ttl,
        refresh_max_lifetime=settings.refresh_token_max_lifetime,
        retry_window=settings.refresh_retry_window,
        now=datetime.now(UTC),
    )


GrantContextDep = Annotated[GrantContext, Depends(get_grant_context)]


async def read_oauth_form(request: Request) -> dict[str, str]:
    """The form of an OAuth endpoint: urlencoded, each parameter at most once.

    Empty parameters count as omitted (RFC 6749 §3.1).
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise InvalidRequestError(f"the body must be {FORM_CONTENT_TYPE}")
    form = await request.form()
    params: dict[str, str] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise InvalidRequestError("file uploads are not accepted")
        if name in params:
            raise InvalidRequestError(f"parameter {name[:40]} is repeated")
        params[name] = value
    return {name: value for name, value in params.items() if value != ""}


async def get_token_form(request: Request) -> TokenForm:
    params = await read_oauth_form(request)
    try:
        return TokenForm.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "request"
        if error["type"] == "missing":
            raise InvalidRequestError(f"{field} is required") from None
        raise InvalidRequestError(
            f"invalid parameter {field}", detail=error["msg"]
        ) from None


TokenFormDep = Annotated[TokenForm, Depends(get_token_form)]


def client_credentials(request: Request, form: TokenForm) -> ClientCredentials | None:
    """The client credentials of a request, by exactly one method (RFC 6749 §2.3)."""
    header = request.headers.get("authorization")
    if header is None:
        if form.client_id is None:
            return None
        return ClientCredentials(form.client_id, form.client_secret, used_basic=False)
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClientError(detail="unsupported authorization scheme")
    if form.client_secret is not None:
        raise InvalidRequestError("use one client authentication method, not two")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClientError(
            detail="malformed basic credentials", used_basic=True
        ) from None
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep or not raw_id:
        raise InvalidClientError(detail="malformed basic credentials", used_basic=True)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if form.client_id is not None and form.client_id != client_id:
        raise InvalidRequestError("client_id in the body differs from the credentials")
    return ClientCredentials(client_id, secret, used_basic=True)
