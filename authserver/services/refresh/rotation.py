"""Rotating a refresh token: mint the next pair, store it in one statement.

The statement (crud.refresh_token) marks the parent used only while it is
live, family and owner included, so it is also the check: None here means it
matched nothing and the caller reads the record to find out why.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authserver.core.exceptions import InvalidGrantError, InvalidScopeError
from authserver.crud.refresh_token import RefreshTokenState
from authserver.crud.rotation_batch import RotationRow
from authserver.models import Client, RefreshToken
from authserver.schemas.token import TokenResponse
from authserver.services.clients import still_allowed
from authserver.services.grants.common import (
    ADMIN_SCOPE,
    GrantContext,
    mint_response,
    new_refresh_record,
    scopes_for_user,
)
from authserver.services.refresh.checks import (
    INVALID,
    login_session,
    narrow,
    timestamp,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rotation:
    """What the next token of a family is made from."""

    parent_jti: str
    user_id: uuid.UUID
    family_id: uuid.UUID
    auth_time: datetime
    family_expires_at: datetime
    granted: list[str]  # what the child refresh token carries
    scopes: list[str]  # what this access token gets (RFC 6749 §6: may narrow)
    login_session_id: uuid.UUID | None  # the ID token's `sid` (a browser sign-in)


def from_claims(
    claims: dict[str, Any], requested_scope: str | None, client: Client
) -> Rotation | None:
    """The rotation the token's own claims describe (they were signed from its
    record); None when the scope asked for is too wide: that is answered only
    once the record says the token is live, so a replay meets reuse detection."""
    granted = still_allowed(str(claims["scope"]), client)
    try:
        scopes = narrow(requested_scope, granted)
    except InvalidScopeError:
        return None
    try:
        user_id, family_id = uuid.UUID(str(claims["sub"])), uuid.UUID(
            str(claims["sid"])
        )
    except ValueError:
        raise InvalidGrantError(INVALID, detail="sub or sid is no UUID") from None
    return Rotation(
        parent_jti=str(claims["jti"]),
        user_id=user_id,
        family_id=family_id,
        auth_time=timestamp(claims["auth_time"]),
        family_expires_at=timestamp(claims["family_exp"]),
        granted=granted,
        scopes=scopes,
        login_session_id=login_session(claims),
    )


def from_record(
    state: RefreshTokenState,
    claims: dict[str, Any],
    requested_scope: str | None,
    client: Client,
) -> Rotation:
    """The rotation of a live record, with the admin scope dropped when its
    owner is no admin any more; InvalidScopeError for a too-wide scope."""
    record = state.record
    granted = scopes_for_user(
        still_allowed(record.scope, client), is_admin=state.is_admin, explicit=False
    )
    return Rotation(
        parent_jti=record.jti,
        user_id=record.user_id,
        family_id=record.family_id,
        auth_time=record.auth_time,
        family_expires_at=timestamp(claims["family_exp"]),
        granted=granted,
        scopes=narrow(requested_scope, granted),
        login_session_id=login_session(claims),
    )


async def rotate(
    ctx: GrantContext, client: Client, rotation: Rotation
) -> TokenResponse | None:
    """Mint the next pair and store it; None when the parent may not rotate."""
    child = new_refresh_record(
        ctx,
        client,
        user_id=rotation.user_id,
        scopes=rotation.granted,
        auth_time=rotation.auth_time,
        family_id=rotation.family_id,
        family_expires_at=rotation.family_expires_at,
    )
    response = answer(ctx, client, rotation, child)
    window = ctx.retry_window
    parent = rotation.parent_jti
    row = RotationRow.of(
        parent,
        child,
        at=ctx.now,
        admin_required=ADMIN_SCOPE in rotation.granted,
        # What a retry needs beyond the records to sign this answer again.
        retry_scope=response.scope if window else None,
        retry_until=ctx.now + window if window else None,
    )
    if ctx.rotation_batcher is not None:
        # The batch runs on a connection of its own: first hand back the one
        # a read before took (a client lookup), so that requests waiting for
        # their batch cannot hold every connection the batch needs.
        await ctx.uow.commit()
    rotated = await ctx.rotate_batched(row)
    if rotated is None:
        await ctx.uow.autocommit()  # one atomic statement on PostgreSQL
        rotated = await ctx.refresh_tokens.rotate_into(row)
    if not rotated:
        return None
    await ctx.uow.commit()
    logger.debug(
        "refresh_token_rotated",
        extra={"client_id": client.client_id, "jti": parent, "child": child.jti},
    )
    return response


def answer(
    ctx: GrantContext, client: Client, rotation: Rotation, child: RefreshToken
) -> TokenResponse:
    """The answer of the rotation into `child`: the same tokens whenever it is
    signed, from the rotation and the child's record (grants.common.mint_response),
    so a retry is signed again instead of stored."""
    return mint_response(
        ctx,
        client,
        user_id=rotation.user_id,
        scopes=rotation.scopes,
        auth_time=rotation.auth_time,
        family_id=rotation.family_id,
        family_expires_at=rotation.family_expires_at,
        refresh=child,
        login_session_id=rotation.login_session_id,
        rotation_of=child.issued_at,
    )
