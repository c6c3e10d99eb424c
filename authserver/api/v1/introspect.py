"""POST /oauth2/introspect (RFC 7662)."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from authserver.api.deps import IntrospectionFormDep, StateDep, TokenContextDep
from authserver.api.oauth_wire import client_credentials
from authserver.api.openapi import SECRET, STRING, form_body
from authserver.core.exceptions import NO_STORE
from authserver.schemas.introspection import IntrospectionResponse
from authserver.schemas.token import OAuthErrorResponse
from authserver.services.clients import authenticate_client
from authserver.services.introspection import introspect

router = APIRouter(tags=["oauth2"])

INTROSPECTION_FORM_SCHEMA = form_body(["token"], token=SECRET, token_type_hint=STRING)


@router.post(
    "/oauth2/introspect",
    response_model=IntrospectionResponse,
    response_model_exclude_none=True,
    responses={
        400: {"model": OAuthErrorResponse},
        401: {"model": OAuthErrorResponse},
    },
    openapi_extra=INTROSPECTION_FORM_SCHEMA,
    summary="Introspect a token (RFC 7662); confidential clients only",
)
async def introspect_token(
    request: Request, form: IntrospectionFormDep, ctx: TokenContextDep, state: StateDep
) -> JSONResponse:
    client = await authenticate_client(
        client_credentials(request.headers.get("authorization"), form),
        ctx.clients.get_by_client_id,
        state.client_cache,
    )
    response = await introspect(ctx, form.token, form.token_type_hint, client)
    return JSONResponse(response.model_dump(exclude_none=True), headers=NO_STORE)
