"""Security events: one row in the audit table and one log line each.

The row joins the caller's transaction, so an event is stored exactly when the
change it describes is (callers that raise after a failure commit first). A
change stored elsewhere (a signing key) gets its record in a transaction of
its own.
"""

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from authserver.core.context import current_request
from authserver.crud.audit import AuditRepository
from authserver.db.unit_of_work import UnitOfWork
from authserver.models.audit import AuditEvent

logger = logging.getLogger("authserver.audit")


async def record(
    session: AsyncSession,
    event: str,
    *,
    subject: str | None = None,
    client_id: str | None = None,
    level: int = logging.INFO,
    **detail: Any,
) -> None:
    context = current_request()
    actor = context.actor if context else None
    ip = context.ip if context else None
    request_id = context.request_id if context else None
    await AuditRepository(session).add(
        AuditEvent(
            event=event,
            actor=actor,
            subject=subject,
            client_id=client_id,
            ip=ip,
            request_id=request_id,
            detail=detail or None,
        )
    )
    logger.log(
        level,
        event,
        extra={
            "audit": True,
            "actor": actor,
            "subject": subject,
            "client_id": client_id,
            "ip": ip,
            **detail,
        },
    )


async def record_alone(uow: UnitOfWork, event: str, **detail: Any) -> None:
    """Record an event in a transaction of its own (committed): for a change
    stored outside this transaction, such as a signing key in its key store."""
    await record(uow.session, event, **detail)
    await uow.commit()


async def login_failed(
    session: AsyncSession,
    *,
    subject: str | None,
    client_id: str | None,
    reason: str,
    **detail: Any,
) -> None:
    """A refused password, wherever it was tried: one event name to alert on."""
    await record(
        session,
        "login_failed",
        subject=subject,
        client_id=client_id,
        reason=reason,
        **detail,
    )
