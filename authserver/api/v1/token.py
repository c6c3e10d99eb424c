"""POST /oauth2/token (RFC 6749 §3.2)."""

from fastapi import APIRouter, Request, Response

from authserver.api.openapi import SECRET, STRING, form_body
from authserver.api.state import request_state
from authserver.api.token_endpoint import TOKEN_PATH, TokenEndpoint
from authserver.schemas.token import OAuthErrorResponse, TokenResponse
from authserver.services.grants import GRANT_HANDLERS

router = APIRouter(tags=["oauth2"])

TOKEN_FORM_SCHEMA = form_body(
    ["grant_type"],
    grant_type={"type": "string", "enum": sorted(GRANT_HANDLERS)},
    username=STRING,
    password=SECRET,
    refresh_token=SECRET,
    scope=STRING,
    code=SECRET,
    redirect_uri=STRING,
    code_verifier=SECRET,
)


@router.post(
    TOKEN_PATH,
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses={
        400: {"model": OAuthErrorResponse},
        401: {"model": OAuthErrorResponse},
    },
    openapi_extra=TOKEN_FORM_SCHEMA,
    summary="Token endpoint: authorization_code, password, refresh_token and "
    "client_credentials grants",
)
async def token(request: Request) -> Response:
    # The pipeline's dispatcher answers this path as a fast path; the route is
    # its OpenAPI description and answers through the very same code.
    return await TokenEndpoint(request_state(request)).respond(request)
