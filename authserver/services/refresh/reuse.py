"""A used refresh token came back: a lost answer retried in time, or reuse.

Only a retry of the same request, within AUTH_REFRESH_RETRY_WINDOW, while the
child is unused and the family live, gets the stored answer; any other second
use is reuse, and the whole family is revoked (RFC 9700 §4.14.2).
"""

import logging

from authserver.core.exceptions import InvalidGrantError
from authserver.core.metrics import REFRESH_TOKEN_REUSE
from authserver.core.security import unseal
from authserver.models import Client
from authserver.schemas.token import TokenResponse
from authserver.services.families import revoke_family
from authserver.services.grants.common import GrantContext
from authserver.services.refresh.checks import INVALID, asks_for

logger = logging.getLogger(__name__)


async def retry_or_reuse(
    ctx: GrantContext,
    client: Client,
    jti: str,
    presented: str,
    requested_scope: str | None,
) -> TokenResponse:
    """The stored answer of a retry; otherwise revoke the family, invalid_grant."""
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
    if (
        record.retry_blob is not None
        and record.retry_until is not None
        and ctx.now < record.retry_until
        and record.replaced_by is not None
        and await _child_unused(ctx, record.replaced_by)
    ):
        answer = unseal(presented, jti, record.retry_blob)
        if answer is not None and asks_for(requested_scope, answer):
            # Nothing to write: release the transaction (SQLite's write lock).
            await ctx.uow.rollback()
            logger.info("refresh_token_retry_answered", extra={"jti": jti})
            return TokenResponse.model_validate(answer)
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


async def _child_unused(ctx: GrantContext, child_jti: str) -> bool:
    # Once the child has been used, the client did get the answer: a retry of
    # the parent can only be a replay.
    child = await ctx.refresh_tokens.get(child_jti)
    return child is not None and child.rotated_at is None and child.revoked_at is None
