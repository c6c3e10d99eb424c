"""The token endpoint's logic: authenticate the client, dispatch on grant_type."""

from collections.abc import Awaitable, Callable

from authserver.core.context import annotate_request
from authserver.core.exceptions import (
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from authserver.core.metrics import TOKENS_ISSUED
from authserver.models import Client
from authserver.schemas.token import TokenForm, TokenResponse
from authserver.services.clients import ClientCredentials, authenticate_client
from authserver.services.grants import (
    authorization_code,
    client_credentials,
    password,
    refresh_token,
)
from authserver.services.grants.common import GrantContext

MAX_LOGGED_GRANT_TYPE = 40
GrantHandler = Callable[[TokenForm, Client, GrantContext], Awaitable[TokenResponse]]

GRANT_HANDLERS: dict[str, GrantHandler] = {
    module.GRANT_TYPE: module.handle
    for module in (authorization_code, password, refresh_token, client_credentials)
}


async def exchange(
    form: TokenForm, credentials: ClientCredentials | None, ctx: GrantContext
) -> TokenResponse:
    """Run one token request to its response or its OAuthError."""
    # The access line says which grant was asked for (the grants' own events
    # are at DEBUG: one INFO line per token request).
    annotate_request(grant_type=form.grant_type[:MAX_LOGGED_GRANT_TYPE])
    client = await authenticate_client(credentials, ctx.find_client, ctx.client_cache)
    handler = GRANT_HANDLERS.get(form.grant_type)
    if handler is None:
        raise UnsupportedGrantTypeError("this grant_type is not supported")
    if form.grant_type not in client.grant_types:
        raise UnauthorizedClientError("this client may not use this grant type")
    response = await handler(form, client, ctx)
    TOKENS_ISSUED.labels(grant_type=form.grant_type).inc()
    return response
