"""Signing a user in with a username and password: the one sequence the
password grant and the hosted login page share (lockout, uniform refusal,
bcrypt outside any transaction)."""

from datetime import datetime
from typing import Any, NoReturn

from authserver.core.exceptions import InvalidGrantError
from authserver.core.lockout import LockPolicy
from authserver.crud.user import UserRepository
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import User
from authserver.services import audit
from authserver.services.passwords import PasswordHasher
from authserver.services.users import check_password

INVALID_CREDENTIALS = "invalid username or password"


async def sign_in(
    uow: UnitOfWork,
    hasher: PasswordHasher,
    username: str,
    password: str,
    *,
    now: datetime,
    lock_policy: LockPolicy,
    client_id: str,
    via: str | None = None,
) -> User:
    """The user whose password this is, or InvalidGrantError with one message
    for every cause (unknown, wrong, locked, disabled). A failure is audited
    and committed before the error is raised; a success is audited and a
    stronger hash stored in the open transaction, which the step that finishes
    the sign-in commits (the grant's tokens, the login page's after_login)."""
    users = UserRepository(uow.session)
    user = await users.get_by_username(username)
    # Counts the attempt and ends the transaction before the slow hash.
    check = await check_password(
        uow, users, hasher, user, password, now=now, lock_policy=lock_policy
    )
    if check.refusal is not None:
        await _refuse(uow, client_id, user, check.refusal, via)
    assert user is not None  # an unknown user is a refusal
    if check.new_hash is not None:
        await users.upgrade_password_hash(
            user, old=user.password_hash, new=check.new_hash
        )
    extra: dict[str, Any] = {"via": via} if via else {}
    await audit.record(
        uow.session,
        "login_succeeded",
        subject=str(user.id),
        client_id=client_id,
        **extra,
    )
    return user


async def _refuse(
    uow: UnitOfWork,
    client_id: str,
    user: User | None,
    reason: str,
    via: str | None,
) -> NoReturn:
    subject = str(user.id) if user else None
    extra = {"via": via} if via else {}
    await audit.login_failed(
        uow.session, subject=subject, client_id=client_id, reason=reason, **extra
    )
    # Commit before raising: the failure count and the audit row must outlive
    # the request's unit of work, which the error ends.
    await uow.commit()
    raise InvalidGrantError(INVALID_CREDENTIALS, detail=f"{reason} {subject}")
