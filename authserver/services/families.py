"""Revoking a refresh-token family: every refresh token of one login, and the
access tokens minted from it (RFC 7009 §2.1: "SHOULD also invalidate all access
tokens based on the same authorization grant").

Access tokens of a family carry its id in `sid`; the family id goes on the
access-token deny list for one access-token lifetime, after which every token
minted from the family has expired anyway.
"""

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.revoked_token import RevokedTokenRepository


async def revoke_family(
    session: AsyncSession,
    family_id: uuid.UUID,
    *,
    at: datetime,
    access_ttl: timedelta,
) -> int:
    """Revoke the family's refresh tokens and deny its access tokens; return count."""
    revoked = await RefreshTokenRepository(session).revoke_family(family_id, at=at)
    await RevokedTokenRepository(session).add(
        str(family_id), expires_at=at + access_ttl, at=at
    )
    return revoked
