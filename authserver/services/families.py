"""Revoking a token family: every refresh token of one login, and the access
tokens minted from it (RFC 7009 §2.1: "SHOULD also invalidate all access
tokens based on the same authorization grant").

The family's row is marked first (crud.refresh_token.revoke_family): the
statements that rotate a refresh token or accept an access token (`sid`)
check it, so the revocation is final even for a child that a concurrent
rotation was writing while it ran.
"""

import logging
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
    family_id = record.family_id
    revoked = await RefreshTokenRepository(session).revoke_family(family_id, at=at)
    await audit.record(
        session,
        event,
        subject=str(record.user_id),
        client_id=client_id,
        family_id=str(family_id),
        jti=record.jti,
        revoked=revoked,
        level=level,
    )
    return revoked
