"""User operations shared by the API and authctl; each rule lives here once.

Disabling, deleting or re-passwording a user revokes their refresh tokens in the
same transaction. Callers commit the unit of work once, except where a
refused password must be stored before the error is raised.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NoReturn

from authserver.core.clock import Clock, utc_now
from authserver.core.exceptions import (
    AlreadyExistsError,
    InvalidValueError,
    NotFoundError,
)
from authserver.core.lockout import LockPolicy
from authserver.core.security import password_problem
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.user import UserRepository
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import User
from authserver.schemas.user import UserCreate
from authserver.services import audit
from authserver.services.passwords import PasswordHasher

Refusal = Literal["locked", "wrong_password", "disabled"]


@dataclass(frozen=True)
class PasswordCheck:
    """A password attempt: why it was refused, or a stronger hash to store."""

    refusal: Refusal | None = None
    new_hash: str | None = None


async def check_password(
    users: UserRepository,
    hasher: PasswordHasher,
    user: User,
    password: str,
    *,
    now: datetime,
    lock_policy: LockPolicy,
) -> PasswordCheck:
    """Check a user's password under the brute-force lock (RFC 6749 §4.3.2).

    Every route that takes a user's password comes here, so guesses anywhere
    count toward the one lock: a wrong password counts a failure, a right one
    on an unlocked, active account clears the count.
    """
    # A locked account still pays for the hash: the answer and its timing say
    # nothing about whether the account is locked.
    locked = user.locked_until is not None and user.locked_until > now
    valid, new_hash = await hasher.verify(password, user.password_hash)
    if locked:
        return PasswordCheck("locked")
    if not valid:
        await users.register_failed_login(user, now=now, lock_for=lock_policy)
        return PasswordCheck("wrong_password")
    if not user.is_active:
        return PasswordCheck("disabled")
    if user.failed_logins or user.locked_until is not None:
        await users.clear_failed_logins(user)
    return PasswordCheck(new_hash=new_hash)


@dataclass
class UserService:
    users: UserRepository
    refresh_tokens: RefreshTokenRepository
    hasher: PasswordHasher
    # None: the unit of work of the repositories' session, owned by the caller.
    uow: UnitOfWork | None = None
    clock: Clock = utc_now

    @classmethod
    def over(
        cls, uow: UnitOfWork, hasher: PasswordHasher, *, clock: Clock = utc_now
    ) -> "UserService":
        """The service with its repositories in the unit of work's session."""
        session = uow.session
        return cls(
            UserRepository(session), RefreshTokenRepository(session), hasher, uow, clock
        )

    def __post_init__(self) -> None:
        if self.uow is None:
            self.uow = UnitOfWork.joining(self.users.session)

    async def resolve(self, ref: str) -> User:
        """A user by UUID or username; NotFoundError if there is none."""
        user = None
        try:
            user = await self.users.get(uuid.UUID(ref))
        except ValueError:
            pass
        if user is None:
            user = await self.users.get_by_username(ref)
        if user is None:
            raise NotFoundError(f"no user {ref!r}")
        return user

    async def create(self, data: UserCreate) -> User:
        """Add a user; AlreadyExistsError if the username or email is taken."""
        if await self.users.get_by_username(data.username) is not None:
            raise AlreadyExistsError(f"username {data.username!r} is taken")
        password_hash = await self.hasher.hash(data.password)
        user = await self.users.add(data, password_hash=password_hash)
        await audit.record(self.users.session, "user_created", subject=str(user.id))
        return user

    async def set_password(self, user: User, password: str) -> int:
        """Replace the password; every refresh token of the user dies. Returns count."""
        problem = password_problem(password)
        if problem:
            raise InvalidValueError(problem)
        now = self.clock()
        password_hash = await self.hasher.hash(password)
        await self.users.set_password_hash(user, password_hash, changed_at=now)
        revoked = await self.refresh_tokens.revoke_for_user(user.id, at=now)
        await audit.record(
            self.users.session,
            "user_password_changed",
            subject=str(user.id),
            revoked=revoked,
        )
        return revoked

    async def set_active(self, user: User, active: bool) -> int:
        """Enable or disable; disabling revokes every refresh token. Returns count."""
        user.is_active = active
        await self.users.session.flush()
        revoked = 0
        if not active:
            revoked = await self.refresh_tokens.revoke_for_user(
                user.id, at=self.clock()
            )
        await audit.record(
            self.users.session,
            "user_enabled" if active else "user_disabled",
            subject=str(user.id),
            revoked=revoked,
        )
        return revoked

    async def set_admin(self, user: User, admin: bool) -> None:
        user.is_admin = admin
        await self.users.session.flush()
        await audit.record(
            self.users.session,
            "user_admin_granted" if admin else "user_admin_revoked",
            subject=str(user.id),
        )

    async def delete(self, user: User) -> None:
        """Delete the user; their refresh tokens go with them (ON DELETE CASCADE)."""
        await self.refresh_tokens.revoke_for_user(user.id, at=self.clock())
        subject = str(user.id)
        await self.users.delete(user)
        await audit.record(self.users.session, "user_deleted", subject=subject)

    async def unlock(self, user: User) -> None:
        """Clear the brute-force lock and the failure count."""
        await self.users.clear_failed_logins(user)
        await audit.record(self.users.session, "user_unlocked", subject=str(user.id))

    async def change_password(
        self,
        user: User,
        current: str,
        new: str,
        *,
        lock_policy: LockPolicy,
        client_id: str | None = None,
    ) -> int:
        """A user's own change: the current password must match. Returns revoked count.

        The current password is checked like a login, so a stolen access token
        cannot be used to guess the password without meeting the lock.
        """
        check = await check_password(
            self.users,
            self.hasher,
            user,
            current,
            now=self.clock(),
            lock_policy=lock_policy,
        )
        if check.refusal is not None:
            await self._refuse_current_password(user, check.refusal, client_id)
        # No rehash: the new password's hash replaces the stored one anyway.
        return await self.set_password(user, new)

    async def _refuse_current_password(
        self, user: User, reason: Refusal, client_id: str | None
    ) -> NoReturn:
        session = self.users.session
        await audit.login_failed(
            session,
            subject=str(user.id),
            client_id=client_id,
            reason=reason,
            via="password_change",
        )
        # Commit before raising: the error ends the request's unit of work, and
        # the failure count and the audit row must outlive it.
        assert self.uow is not None  # set by __post_init__
        await self.uow.commit()
        # Locked reads the same as wrong, as at the token endpoint: the answer
        # must not tell a guesser that the lock has started.
        raise InvalidValueError(
            "the current password is wrong", field="current_password"
        )
