"""Consent (OIDC Core §3.1.2.4): a third-party client gets only the scopes the
user agreed to, remembered per user and client; asking for more asks again.
First-party clients (the operator's own apps) skip it."""

import uuid
from datetime import datetime

from authserver.crud.consent import ConsentRepository
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import Client, Consent
from authserver.services import audit


async def is_granted(
    repo: ConsentRepository, user_id: uuid.UUID, client: Client, scopes: list[str]
) -> bool:
    """Whether the user need not be asked for these scopes now."""
    if not client.is_third_party:
        return True
    consent = await repo.get_by_user_and_client(user_id, client.id)
    return consent is not None and set(scopes) <= set(consent.scope.split())


async def grant(
    repo: ConsentRepository,
    user_id: uuid.UUID,
    client: Client,
    scopes: list[str],
    *,
    now: datetime,
) -> None:
    """Remember the user's yes; scopes granted before stay granted."""
    consent = await repo.get_by_user_and_client(user_id, client.id)
    if consent is None:
        consent = Consent(
            user_id=user_id, client_id=client.id, scope=" ".join(scopes), granted_at=now
        )
        await repo.add(consent)
    else:
        merged = list(dict.fromkeys([*consent.scope.split(), *scopes]))
        consent.scope = " ".join(merged)
        consent.granted_at = now
        await repo.session.flush()
    await audit.record(
        repo.session,
        "consent_granted",
        subject=str(user_id),
        client_id=client.client_id,
        scope=consent.scope,
    )


async def revoke(uow: UnitOfWork, user_id: uuid.UUID, client: Client | None) -> int:
    """Forget the user's consent to `client` (every client when None); committed."""
    repo = ConsentRepository(uow.session)
    deleted = await repo.delete(user_id, client.id if client else None)
    await audit.record(
        repo.session,
        "consent_revoked",
        subject=str(user_id),
        client_id=client.client_id if client else None,
        revoked=deleted,
    )
    await uow.commit()
    return deleted
