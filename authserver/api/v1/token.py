"""POST /oauth2/token (RFC 6749 §3.2)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from authserver.api.deps import GrantContextDep, TokenFormDep, client_credentials
from authserver.api.errors import NO_STORE
from authserver.api.openapi import SECRET, STRING, form_body
from authserver.schemas.token import OAuthErrorResponse, TokenResponse
from authserver.services.grants import GRANT_HANDLERS, exchange

router = APIRouter(tags=["oauth2"])

TOKEN_FORM_SCHEMA = form_body(
    ["grant_type"],
    grant_type={"type": "string", "enum": sorted(GRANT_HANDLERS)},
    username=STRING,
    password=SECRET,
    refresh_token=SECRET,
    scope=STRING,
)


@router.post(
    "/oauth2/token",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses={
        400: {"model": OAuthErrorResponse},
        401: {"model": OAuthErrorResponse},
    },
    openapi_extra=TOKEN_FORM_SCHEMA,
    summary="Token endpoint: password, refresh_token and client_credentials grants",
)
async def token(
    request: Request, form: TokenFormDep, ctx: GrantContextDep
) -> JSONResponse:
    response = await exchange(form, client_credentials(request, form), ctx)
    return JSONResponse(response.model_dump(exclude_none=True), headers=NO_STORE)
