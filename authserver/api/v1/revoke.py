"""POST /oauth2/revoke (RFC 7009)."""

from fastapi import APIRouter, Request, Response

from authserver.api.deps import RevocationFormDep, StateDep, TokenContextDep
from authserver.api.oauth_wire import client_credentials
from authserver.api.openapi import SECRET, form_body
from authserver.core.exceptions import NO_STORE
from authserver.schemas.token import OAuthErrorResponse
from authserver.services.clients import authenticate_client
from authserver.services.revocation import revoke

router = APIRouter(tags=["oauth2"])

REVOCATION_FORM_SCHEMA = form_body(
    ["token"],
    token=SECRET,
    token_type_hint={
        "type": "string",
        "description": "access_token or refresh_token; any other is ignored",
    },
)


@router.post(
    "/oauth2/revoke",
    status_code=200,
    response_class=Response,
    responses={
        200: {"description": "Revoked, or the token was already invalid or unknown"},
        400: {"model": OAuthErrorResponse},
        401: {"model": OAuthErrorResponse},
    },
    openapi_extra=REVOCATION_FORM_SCHEMA,
    summary="Revoke an access or refresh token (RFC 7009)",
)
async def revoke_token(
    request: Request, form: RevocationFormDep, ctx: TokenContextDep, state: StateDep
) -> Response:
    client = await authenticate_client(
        client_credentials(request.headers.get("authorization"), form),
        ctx.clients.get_by_client_id,
        state.client_cache,
    )
    await revoke(ctx, form.token, form.token_type_hint, client)
    return Response(status_code=200, headers=NO_STORE)
