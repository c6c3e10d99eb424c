"""refresh_token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14).

Every use rotates: the presented token is marked used by one conditional UPDATE
and exactly one child is minted. A client whose answer was lost may present the
same token again within AUTH_REFRESH_RETRY_WINDOW and gets the very same answer,
kept sealed under a key derived from the presented token. Any other second use
is reuse: the whole family is revoked.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authserver.core.exceptions import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    TokenError,
)
from authserver.core.metrics import REFRESH_TOKEN_REUSE
from authserver.core.security import seal, unseal
from authserver.crud.refresh_token import TokenOwner
from authserver.crud.rotation_batch import RotationRow
from authserver.models import Client, RefreshToken
from authserver.schemas.scope import parse_scope
from authserver.schemas.token import TokenForm, TokenResponse
from authserver.services.families import revoke_family
from authserver.services.grants.common import (
    ADMIN_SCOPE,
    GrantContext,
    mint_response,
    new_refresh_record,
    scopes_for_user,
)

GRANT_TYPE = "refresh_token"
INVALID = "refresh token is invalid, expired or revoked"
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


async def handle(form: TokenForm, client: Client, ctx: GrantContext) -> TokenResponse:
    if not form.refresh_token:
        raise InvalidRequestError("refresh_token is required")
    presented = form.refresh_token
    try:
        claims = ctx.tokens.verify_refresh(presented, now=ctx.now)
    except TokenError as exc:
        raise InvalidGrantError(INVALID, detail=str(exc)) from None

    # The usual case in one round trip: the token's own claims say what its
    # record holds (they were signed from it), and the rotating statement
    # checks what may have changed since: used, revoked, the user disabled,
    # re-passworded or no longer an admin, the family past its lifetime.
    rotation = _from_claims(claims, form, client)
    if rotation is not None:
        response = await _rotate(ctx, client, rotation, presented)
        if response is not None:
            return response

    # Otherwise read the record to find out why, or to rotate with what it says.
    await ctx.uow.autocommit()
    found = await ctx.refresh_tokens.find_for_rotation(str(claims["jti"]))
    if found is None or found[0].client_id != client.id:
        raise InvalidGrantError(
            INVALID, detail="unknown jti, deleted user or another client's token"
        )
    record, owner = found
    if record.rotated_at is not None or record.revoked_at is not None:
        return await _retry_or_reuse(ctx, client, record.jti, presented, form.scope)
    _check_live(ctx, record, owner)
    granted = scopes_for_user(
        _still_allowed(record.scope, client), is_admin=owner.is_admin, explicit=False
    )
    rotation = Rotation(
        parent_jti=record.jti,
        user_id=owner.id,
        family_id=record.family_id,
        auth_time=record.auth_time,
        family_expires_at=record.family_expires_at,
        granted=granted,
        scopes=_narrow(form.scope, granted),
    )
    response = await _rotate(ctx, client, rotation, presented)
    if response is None:
        # A concurrent request rotated it first (it has committed by now).
        return await _retry_or_reuse(ctx, client, record.jti, presented, form.scope)
    return response


def _from_claims(
    claims: dict[str, Any], form: TokenForm, client: Client
) -> Rotation | None:
    """The rotation the claims describe; None when they cannot say (a token
    from before these claims existed, another client's token)."""
    if claims.get("client_id") != client.client_id:
        return None
    try:
        granted = _still_allowed(str(claims["scope"]), client)
        return Rotation(
            parent_jti=str(claims["jti"]),
            user_id=uuid.UUID(str(claims["sub"])),
            family_id=uuid.UUID(str(claims["sid"])),
            auth_time=_from_timestamp(claims["auth_time"]),
            family_expires_at=_from_timestamp(claims["family_exp"]),
            granted=granted,
            scopes=_narrow(form.scope, granted),
        )
    except (KeyError, ValueError, TypeError, OverflowError, InvalidScopeError):
        # A too-wide scope is answered after the record says the token is
        # live: a replayed token must reach reuse detection first.
        return None


def _still_allowed(scope: str, client: Client) -> list[str]:
    """The granted scopes the client may still ask for (its scopes may shrink)."""
    return [s for s in scope.split() if s in client.scopes]


def _from_timestamp(value: object) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("a timestamp claim must be an integer")
    return datetime.fromtimestamp(value, UTC)


async def _rotate(
    ctx: GrantContext, client: Client, rotation: Rotation, presented: str
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
    response = mint_response(
        ctx,
        client,
        user_id=rotation.user_id,
        scopes=rotation.scopes,
        auth_time=rotation.auth_time,
        refresh=child,
    )
    window = ctx.retry_window
    parent = rotation.parent_jti
    blob = seal(presented, parent, response.model_dump()) if window else None
    rotation_row = RotationRow.of(
        parent,
        child,
        at=ctx.now,
        admin_required=ADMIN_SCOPE in rotation.granted,
        retry_blob=blob,
        retry_until=ctx.now + window if window else None,
    )
    rotated = await ctx.refresh_tokens.rotate_batched(rotation_row)
    if rotated is None:
        await ctx.uow.autocommit()  # one atomic statement on PostgreSQL
        rotated = await ctx.refresh_tokens.rotate_into(rotation_row)
    if not rotated:
        return None
    await ctx.uow.commit()
    logger.debug(
        "refresh_token_rotated",
        extra={"client_id": client.client_id, "jti": parent, "child": child.jti},
    )
    return response


def _check_live(ctx: GrantContext, record: RefreshToken, owner: TokenOwner) -> None:
    if record.family_expires_at <= ctx.now:
        raise InvalidGrantError(INVALID, detail="family past its absolute lifetime")
    if not owner.is_active:
        raise InvalidGrantError(INVALID, detail="user disabled")
    if owner.password_changed_at > record.issued_at:
        raise InvalidGrantError(INVALID, detail="password changed after issue")


def _narrow(requested: str | None, granted: list[str]) -> list[str]:
    """RFC 6749 §6: the new scope may narrow the original, never widen it."""
    if requested is None:
        return granted
    scopes = parse_scope(requested)
    if scopes is None:
        raise InvalidScopeError("malformed scope")
    if any(s not in granted for s in scopes):
        raise InvalidScopeError("scope exceeds the original grant")
    return scopes


async def _retry_or_reuse(
    ctx: GrantContext,
    client: Client,
    jti: str,
    presented: str,
    requested_scope: str | None,
) -> TokenResponse:
    """A used token came back: a lost answer retried in time, or a replay.

    Only a retry of the same request gets the stored answer: one that asks for
    another scope is no lost answer, and is treated as the replay it is.
    """
    # What follows may write several rows (a family's revocation and its audit
    # record) that must commit together: leave autocommit for a transaction,
    # and decide on the record as that transaction reads it.
    await ctx.uow.new_transaction()
    record = await ctx.refresh_tokens.get(jti)
    if record is None:  # its user was deleted in between
        raise InvalidGrantError(INVALID, detail=f"record {jti} gone")
    if record.revoked_at is not None:
        raise InvalidGrantError(INVALID, detail=f"revoked token {record.jti}")
    if (
        record.retry_blob is not None
        and record.retry_until is not None
        and ctx.now < record.retry_until
        and record.replaced_by is not None
        and await _child_unused(ctx, record.replaced_by)
    ):
        answer = unseal(presented, jti, record.retry_blob)
        if answer is not None and _asks_for(requested_scope, answer):
            # Nothing to write: release the transaction (SQLite's write lock)
            # now. Rollback expires `record`, so it is not touched after.
            await ctx.uow.rollback()
            logger.info("refresh_token_retry_answered", extra={"jti": jti})
            return TokenResponse.model_validate(answer)
    await revoke_family(
        ctx.session,
        record,
        at=ctx.now,
        access_ttl=ctx.tokens.access_ttl,
        event="refresh_token_reuse_detected",
        client_id=client.client_id,
        level=logging.WARNING,  # the audit record is also the one log line
    )
    await ctx.uow.commit()
    REFRESH_TOKEN_REUSE.inc()
    raise InvalidGrantError(INVALID, detail=f"reuse of rotated token {record.jti}")


def _asks_for(requested_scope: str | None, answer: dict[str, Any]) -> bool:
    """Whether a retry's scope parameter asks for what the answer grants
    (no parameter asks for the original request's scope, whatever it was)."""
    if requested_scope is None:
        return True
    requested = parse_scope(requested_scope)
    return requested is not None and set(requested) == set(answer["scope"].split())


async def _child_unused(ctx: GrantContext, child_jti: str) -> bool:
    # Once the child has been used, the client did get the answer: a retry of
    # the parent can only be a replay.
    child = await ctx.refresh_tokens.get(child_jti)
    return child is not None and child.rotated_at is None and child.revoked_at is None
