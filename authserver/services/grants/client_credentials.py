"""Client credentials grant (RFC 6749 §4.4): a confidential client acting for itself.

The access token's `sub` is the client_id and no refresh token is issued
(§4.4.3). Scopes that only make sense for a user are refused: `openid` (there
is nobody to identify) and `admin` (it stands for an admin *user*).
"""

import logging

from authserver.core.exceptions import InvalidScopeError, UnauthorizedClientError
from authserver.models import Client
from authserver.schemas.token import TokenForm, TokenResponse
from authserver.services.grants.common import (
    ADMIN_SCOPE,
    OPENID_SCOPE,
    GrantContext,
    requested_scopes,
)
from authserver.services.tokens import seconds

GRANT_TYPE = "client_credentials"
USER_ONLY_SCOPES = frozenset({OPENID_SCOPE, ADMIN_SCOPE})
logger = logging.getLogger(__name__)


async def handle(form: TokenForm, client: Client, ctx: GrantContext) -> TokenResponse:
    if client.is_public:
        raise UnauthorizedClientError(
            "a public client may not use this grant type",
            detail=f"public client {client.client_id} tried client_credentials",
        )
    scopes = requested_scopes(form.scope, client)
    user_only = [s for s in scopes if s in USER_ONLY_SCOPES]
    if user_only and form.scope is not None:
        raise InvalidScopeError(
            "scope not available without a user", detail=f"scopes {user_only}"
        )
    scopes = [s for s in scopes if s not in USER_ONLY_SCOPES]
    scope = " ".join(scopes)

    access = ctx.tokens.mint_access(
        subject=client.client_id,
        client_id=client.client_id,
        scope=scope,
        audience=client.audience,
        now=ctx.now,
        client_uuid=str(client.id),
    )
    logger.debug(
        "token_issued",
        extra={
            "client_id": client.client_id,
            "grant_type": GRANT_TYPE,
            "jti": access.jti,
        },
    )
    return TokenResponse(
        access_token=access.token,
        expires_in=seconds(access.expires_at - ctx.now),
        scope=scope,
    )
