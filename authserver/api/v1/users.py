"""The users API under /api/v1/users: one's own account, and admin operations.

/me needs a user's token with the `profile` scope; everything else an admin
user's token with the `admin` scope. POST /api/v1/users is admin-only, unless
AUTH_ALLOW_SELF_REGISTRATION lets a request without a token sign up (never as
an admin). Errors share one body: {"error", "error_description", "errors"?}.

POST /me/password checks the current password like the password grant does: a
wrong one counts toward the same account lock, and a locked account's answer
is the wrong-password one.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from authserver.api.bearer import BearerAuth, BearerSchemeDep
from authserver.api.deps import (
    LockPolicyDep,
    SettingsDep,
    TokenContextDep,
    UserServiceDep,
    no_store,
)
from authserver.core.exceptions import (
    InvalidValueError,
    MissingTokenError,
    NotFoundError,
)
from authserver.models import User
from authserver.schemas.account import (
    MAX_LIST_LIMIT,
    MAX_OFFSET,
    ErrorResponse,
    PasswordChange,
    PasswordSet,
    ProfileUpdate,
    UserCreateRequest,
    UserPage,
    UserUpdate,
)
from authserver.schemas.user import USERNAME_PATTERN, UserRead
from authserver.services.token_state import AccessGrant
from authserver.services.users import UserService

PROFILE_SCOPE = "profile"

router = APIRouter(
    prefix="/api/v1/users",
    tags=["users"],
    dependencies=[Depends(no_store)],
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid token"},
        403: {"model": ErrorResponse, "description": "Scope or role missing"},
        404: {"model": ErrorResponse, "description": "No such user"},
        422: {"model": ErrorResponse, "description": "Invalid input, by field"},
    },
)

_admin = BearerAuth(admin=True)
SelfDep = Annotated[AccessGrant, Depends(BearerAuth(PROFILE_SCOPE, user=True))]
AdminDep = Annotated[AccessGrant, Depends(_admin)]


def _user_of(grant: AccessGrant) -> User:
    assert grant.user is not None  # BearerAuth(user=True) refuses client tokens
    return grant.user


@router.get("/me", response_model=UserRead, summary="The token's own user")
async def read_me(grant: SelfDep) -> User:
    return _user_of(grant)


@router.patch(
    "/me",
    response_model=UserRead,
    responses={409: {"model": ErrorResponse, "description": "Email taken"}},
    summary="Change one's own email",
)
async def update_me(
    body: ProfileUpdate, grant: SelfDep, service: UserServiceDep
) -> User:
    user = _user_of(grant)
    if "email" in body.model_fields_set:
        await service.set_email(user, body.email)
    return user


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change one's own password; ends every refresh token of the user",
)
async def change_my_password(
    body: PasswordChange,
    grant: SelfDep,
    service: UserServiceDep,
    lock_policy: LockPolicyDep,
) -> None:
    await service.change_password(
        _user_of(grant),
        body,
        lock_policy=lock_policy,
        client_id=grant.client.client_id,
    )


@router.get("", response_model=UserPage, summary="List users (admin)")
async def list_users(
    _grant: AdminDep,
    service: UserServiceDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
    username: Annotated[
        str | None, Query(pattern=USERNAME_PATTERN, description="Username prefix.")
    ] = None,
    email: Annotated[
        str | None,
        Query(max_length=320, pattern=r"^[^\x00-\x1f\x7f]+$", description="Prefix."),
    ] = None,
    active: Annotated[bool | None, Query(description="Only (in)active users.")] = None,
) -> UserPage:
    users, total = await service.users.list(
        offset=offset,
        limit=limit,
        username_prefix=username,
        email_prefix=email,
        is_active=active,
    )
    items = [UserRead.model_validate(user) for user in users]
    return UserPage(items=items, total=total, offset=offset, limit=limit)


async def creator(
    request: Request,
    ctx: TokenContextDep,
    settings: SettingsDep,
    scheme: BearerSchemeDep,
) -> AccessGrant | None:
    """An admin's grant; None for a sign-up when self-registration is on."""
    if settings.allow_self_registration and "authorization" not in request.headers:
        return None
    return await _admin(request, ctx, settings, scheme)


@router.post(
    "",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorResponse, "description": "Username or email taken"}},
    summary="Create a user (admin), or sign up when self-registration is on",
)
async def create_user(
    body: UserCreateRequest,
    grant: Annotated[AccessGrant | None, Depends(creator)],
    service: UserServiceDep,
    response: Response,
) -> User:
    if grant is None and body.is_admin:
        raise MissingTokenError("creating an admin needs an admin's token")
    user = await service.create(body)
    response.headers["Location"] = f"{router.prefix}/{user.id}"
    return user


@router.get("/{user_id}", response_model=UserRead, summary="One user (admin)")
async def read_user(
    user_id: uuid.UUID, _grant: AdminDep, service: UserServiceDep
) -> User:
    return await _get(service, user_id)


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    responses={409: {"model": ErrorResponse, "description": "Email taken"}},
    summary="Change email, active or admin (admin); disabling ends refresh tokens",
)
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    grant: AdminDep,
    service: UserServiceDep,
) -> User:
    user = await _get(service, user_id)
    if user.id == _user_of(grant).id and (
        body.is_active is False or body.is_admin is False
    ):
        raise InvalidValueError("admins cannot disable or demote themselves")
    await service.update(user, body)
    return user


@router.post(
    "/{user_id}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a user's password (admin); ends their refresh tokens",
)
async def set_user_password(
    user_id: uuid.UUID,
    body: PasswordSet,
    _grant: AdminDep,
    service: UserServiceDep,
) -> None:
    user = await _get(service, user_id)
    await service.set_password(user, body)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a user (admin)",
)
async def delete_user(
    user_id: uuid.UUID, grant: AdminDep, service: UserServiceDep
) -> None:
    user = await _get(service, user_id)
    if user.id == _user_of(grant).id:
        raise InvalidValueError("admins cannot delete themselves")
    await service.delete(user)


async def _get(service: UserService, user_id: uuid.UUID) -> User:
    user = await service.users.get(user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id}")
    return user
