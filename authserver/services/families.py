"""Revoking a refresh-token family: every refresh token of one login, and the
access tokens minted from it (RFC 7009 §2.1: "SHOULD also invalidate all access
tokens based on the same authorization grant").

Access tokens of a family carry its id in `sid`; the family id goes on the
access-token deny list for one access-token lifetime, after which every token
minted from the family has expired anyway.
"""

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.revoked_token import RevokedTokenRepository
from authserver.models import RefreshToken
from authserver.services import audit


async def revoke_family(
    session: AsyncSession,
    record: RefreshToken,
    *,
    at: datetime,
    access_ttl: timedelta,
    event: str,
    client_id: str,
    level: int = logging.INFO,
) -> int:
    """Revoke the family of `record` and deny its access tokens; audit it as
    `event` (not committed). Returns how many refresh tokens were revoked."""
    family_id = record.family_id
    revoked = await RefreshTokenRepository(session).revoke_family(family_id, at=at)
    await RevokedTokenRepository(session).add(
        str(family_id), expires_at=at + access_ttl, at=at
    )
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
