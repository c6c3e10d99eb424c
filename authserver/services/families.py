"""Revoking a token family: every refresh token of one login, and the access
tokens minted from it (RFC 7009 §2.1: "SHOULD also invalidate all access
tokens based on the same authorization grant").

The family's row is marked first (crud.refresh_token.revoke_family): the
statements that rotate a refresh token or accept an access token (`sid`)
check it, so the revocation is final even for a child that a concurrent
rotation was writing while it ran.
"""

import logging
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.models import RefreshToken
from authserver.services import audit


async def revoke_family(
    session: AsyncSession,
    record: RefreshToken,
    *,
    at: datetime,
    event: str,
    client_id: str,
    level: int = logging.INFO,
) -> int:
    """Revoke the family of `record`; audit it as `event` (not committed).
    Returns how many refresh tokens were revoked."""
    return await revoke_family_id(
        session,
        record.family_id,
        user_id=record.user_id,
        at=at,
        event=event,
        client_id=client_id,
        level=level,
        jti=record.jti,
    )


async def revoke_family_id(
    session: AsyncSession,
    family_id: uuid.UUID,
    *,
    user_id: uuid.UUID,
    at: datetime,
    event: str,
    client_id: str,
    level: int = logging.INFO,
    **detail: str,
) -> int:
    """revoke_family by id: for a grant that may have no refresh token (a
    replayed authorization code, RFC 6749 §4.1.2)."""
    revoked = await RefreshTokenRepository(session).revoke_family(family_id, at=at)
    await audit.record(
        session,
        event,
        subject=str(user_id),
        client_id=client_id,
        family_id=str(family_id),
        revoked=revoked,
        level=level,
        **detail,
    )
    return revoked
