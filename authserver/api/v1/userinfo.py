"""GET/POST /oauth2/userinfo (OpenID Connect Core §5.3)."""

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from authserver.api.bearer import BearerAuth
from authserver.core.exceptions import NO_STORE
from authserver.schemas.token import OAuthErrorResponse
from authserver.schemas.userinfo import UserInfo
from authserver.services.grants.common import OPENID_SCOPE
from authserver.services.token_state import AccessGrant

router = APIRouter(tags=["openid"])

# The openid scope is what authorises this endpoint, so a token for any of our
# audiences will do (a client whose tokens name its own API still gets here).
OpenIdGrantDep = Annotated[
    AccessGrant, Depends(BearerAuth(OPENID_SCOPE, user=True, any_audience=True))
]
RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": OAuthErrorResponse, "description": "Missing or invalid token"},
    403: {"model": OAuthErrorResponse, "description": "No openid scope"},
}


@router.get(
    "/oauth2/userinfo",
    response_model=UserInfo,
    response_model_exclude_none=True,
    responses=RESPONSES,
    summary="Claims about the token's user, by granted scope",
)
async def userinfo_get(grant: OpenIdGrantDep) -> JSONResponse:
    return _userinfo(grant)


@router.post(
    "/oauth2/userinfo",
    response_model=UserInfo,
    response_model_exclude_none=True,
    responses=RESPONSES,
    summary="Claims about the token's user, by granted scope (POST)",
)
async def userinfo_post(grant: OpenIdGrantDep) -> JSONResponse:
    return _userinfo(grant)


def _userinfo(grant: AccessGrant) -> JSONResponse:
    user = grant.user
    assert user is not None  # BearerAuth(user=True) refuses client tokens
    info = UserInfo(sub=str(user.id))
    if "profile" in grant.scopes:
        info.preferred_username = user.username
    if "email" in grant.scopes and user.email:
        info.email = user.email
        info.email_verified = user.email_verified
    return JSONResponse(info.model_dump(exclude_none=True), headers=NO_STORE)
