"""Periodic clean-up: retry answers, expired refresh tokens, stale deny-list
rows, and expired authorization requests, codes and sign-in sessions."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from authserver.crud.authorization import (
    AuthorizationCodeRepository,
    AuthorizationRequestRepository,
)
from authserver.crud.login_session import LoginSessionRepository
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.revoked_token import RevokedTokenRepository
from authserver.db.session import SessionFactory
from authserver.db.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

# Expired records linger a day so an operator can still see what happened.
KEEP_EXPIRED_FOR = timedelta(days=1)


async def purge_once(session_factory: SessionFactory) -> int:
    """Delete what nothing can need any more; return the rows deleted."""
    now = datetime.now(UTC)
    async with UnitOfWork(session_factory) as uow:
        deleted = await RefreshTokenRepository(uow.session).purge(
            now=now, keep_expired_for=KEEP_EXPIRED_FOR
        )
        # The margin also covers workers whose clocks lag behind ours.
        deleted += await RevokedTokenRepository(uow.session).purge(
            now=now, keep_expired_for=KEEP_EXPIRED_FOR
        )
        deleted += await AuthorizationRequestRepository(uow.session).purge(now=now)
        deleted += await AuthorizationCodeRepository(uow.session).purge(now=now)
        deleted += await LoginSessionRepository(uow.session).purge(now=now)
        await uow.commit()
    return deleted


async def run_periodically(session_factory: SessionFactory, interval: float) -> None:
    """Purge every `interval` seconds until cancelled; failures are logged."""
    while True:
        await asyncio.sleep(interval)
        try:
            deleted = await purge_once(session_factory)
            if deleted:
                logger.info("expired_tokens_purged", extra={"deleted": deleted})
        except Exception:
            logger.exception("purge_failed")
