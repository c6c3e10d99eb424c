"""POST /oauth2/token (RFC 6749 §3.2)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from authserver.api.deps import GrantContextDep, TokenFormDep, client_credentials
from authserver.api.errors import NO_STORE
from authserver.schemas.token import OAuthErrorResponse, TokenResponse
from authserver.services.grants import GRANT_HANDLERS, exchange

router = APIRouter(tags=["oauth2"])

TOKEN_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {
                            "type": "string",
                            "enum": sorted(GRANT_HANDLERS),
                        },
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                        "refresh_token": {"type": "string"},
                        "scope": {"type": "string"},
                        "client_id": {"type": "string"},
                        "client_secret": {"type": "string", "format": "password"},
                    },
                }
            }
        },
    }
}


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
