"""A used refresh token came back: a lost answer retried in time, or reuse.

Only a retry of the same request, within AUTH_REFRESH_RETRY_WINDOW, while the
child is unused and the family live, gets the answer again: the same tokens,
signed again from the records (services.refresh.rotation.answer). Any other
second use is reuse, and the whole family is revoked (RFC 9700 §4.14.2).
"""

import logging
from typing import Any

from authserver.core.exceptions import InvalidGrantError
from authserver.core.metrics import REFRESH_TOKEN_REUSE
from authserver.core.security import unseal
from authserver.models import Client, RefreshToken
from authserver.schemas.scope import parse_scope
from authserver.schemas.token import TokenResponse
from authserver.services.families import revoke_family
from authserver.services.grants.common import GrantContext
from authserver.services.refresh import rotation
from authserver.services.refresh.checks import (
    INVALID,
    asks_for,
    login_session,
    timestamp,
)

logger = logging.getLogger(__name__)


async def retry_or_reuse(
    ctx: GrantContext,
    client: Client,
    claims: dict[str, Any],
    presented: str,
    requested_scope: str | None,
) -> TokenResponse:
    """The same answer again for a retry; otherwise revoke the family, invalid_grant."""
    jti = str(claims["jti"])
    # What follows may write several rows (a family's revocation and its audit
    # record) that must commit together: leave autocommit for a transaction,
    # and decide on the record as that transaction reads it.
    await ctx.uow.new_transaction()
    state = await ctx.refresh_tokens.get_state(jti, at=ctx.now)
    if state is None:  # its user was deleted in between
        raise InvalidGrantError(INVALID, detail=f"record {jti} gone")
    record = state.record
    if record.revoked_at is not None or not state.family_live:
        raise InvalidGrantError(INVALID, detail=f"revoked token {record.jti}")
    child = await _retryable_child(ctx, record)
    if child is not None:
        answer = _answer_again(ctx, client, record, child, claims, presented)
        if answer is not None and asks_for(requested_scope, answer.scope):
            # Nothing to write: release the transaction (SQLite's write lock).
            await ctx.uow.rollback()
            logger.info("refresh_token_retry_answered", extra={"jti": jti})
            return answer
    await revoke_family(
        ctx.session,
        record,
        at=ctx.now,
        event="refresh_token_reuse_detected",
        client_id=client.client_id,
        level=logging.WARNING,  # the audit record is also the one log line
    )
    await ctx.uow.commit()
    REFRESH_TOKEN_REUSE.inc()
    raise InvalidGrantError(INVALID, detail=f"reuse of rotated token {record.jti}")


async def _retryable_child(
    ctx: GrantContext, record: RefreshToken
) -> RefreshToken | None:
    """The child of a rotation still inside its retry window, while unused."""
    if (
        record.retry_until is None
        or ctx.now >= record.retry_until
        or record.replaced_by is None
        or (record.retry_scope is None and record.retry_blob is None)
    ):
        return None
    # Once the child has been used, the client did get the answer: a retry of
    # the parent can only be a replay.
    child = await ctx.refresh_tokens.get(record.replaced_by)
    if child is None or child.rotated_at is not None or child.revoked_at is not None:
        return None
    return child


def _answer_again(
    ctx: GrantContext,
    client: Client,
    record: RefreshToken,
    child: RefreshToken,
    claims: dict[str, Any],
    presented: str,
) -> TokenResponse | None:
    """The rotation's answer once more; None if it cannot be had."""
    if record.retry_scope is None:
        # Rotated before migration 0008: its answer was stored sealed under
        # a key derived from the presented token.
        assert record.retry_blob is not None
        sealed = unseal(presented, record.jti, record.retry_blob)
        return None if sealed is None else TokenResponse.model_validate(sealed)
    scopes = parse_scope(record.retry_scope)
    if scopes is None:
        return None
    again = rotation.Rotation(
        parent_jti=record.jti,
        user_id=record.user_id,
        family_id=record.family_id,
        auth_time=child.auth_time,
        family_expires_at=timestamp(claims["family_exp"]),
        granted=child.scope.split(),
        scopes=scopes,
        login_session_id=login_session(claims),
    )
    return rotation.answer(ctx, client, again, child)
