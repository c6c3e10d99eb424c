"""User operations shared by the API and authctl; each rule lives here once.

Disabling, deleting or re-passwording a user revokes their refresh tokens and
ends their browser sessions in the same transaction. Each operation of
UserService ends its transaction itself, through the unit of work: it commits
what it wrote once it is all written, and an error leaves nothing of it. Two
commits come earlier: bcrypt never runs inside a transaction, so an operation
that hashes or checks a password first ends the one open (committing what it
wrote); and a refused password is stored before the error is raised.
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
from authserver.crud.login_session import LoginSessionRepository
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.user import USERNAME_OR_EMAIL_TAKEN, UserRepository
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import User
from authserver.schemas.account import PasswordChange, PasswordSet, UserUpdate
from authserver.schemas.user import UserCreate
from authserver.services import audit
from authserver.services.passwords import PasswordHasher

Refusal = Literal["unknown_user", "locked", "wrong_password", "disabled"]


@dataclass(frozen=True)
class PasswordCheck:
    """A password attempt: why it was refused, or a stronger hash to store."""

    refusal: Refusal | None = None
    new_hash: str | None = None


async def check_password(
    uow: UnitOfWork,
    users: UserRepository,
    hasher: PasswordHasher,
    user: User | None,
    password: str,
    *,
    now: datetime,
    lock_policy: LockPolicy,
) -> PasswordCheck:
    """Check a user's password under the brute-force lock (RFC 6749 §4.3.2).

    Every route that takes a user's password comes here, so guesses anywhere
    count toward the one lock. The attempt is counted as a failure before the
    hash, and that count is committed, so parallel guesses see each other: a
    burst is counted as if its guesses came one by one, and those past the
    threshold are refused unchecked. A right password forgives the failures
    counted up to it. The caller's read transaction ends here: no transaction
    is open while bcrypt runs.
    """
    counted = None
    if user is not None:
        counted = await users.count_attempt(user, now=now, policy=lock_policy)
    await uow.commit()
    if user is None:
        await hasher.burn(password)
        return PasswordCheck("unknown_user")
    # A refused attempt pays for the same hash: neither the answer nor its
    # timing says whether the account is locked.
    valid, new_hash = await hasher.verify(password, user.password_hash)
    if counted is None:
        return PasswordCheck("locked")
    if not valid:
        await users.record_failure(user, now=now, policy=lock_policy)
        await uow.commit()
        return PasswordCheck("wrong_password")
    await users.forgive_attempts(user, counted=counted, policy=lock_policy)
    if not user.is_active:
        return PasswordCheck("disabled")
    return PasswordCheck(new_hash=new_hash)


async def resolve_user(users: UserRepository, ref: str) -> User:
    """A user by UUID or username; NotFoundError if there is none."""
    user = None
    try:
        user = await users.get(uuid.UUID(ref))
    except ValueError:
        pass
    if user is None:
        user = await users.get_by_username(ref)
    if user is None:
        raise NotFoundError(f"no user {ref!r}")
    return user


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
        return await resolve_user(self.users, ref)

    async def create(self, data: UserCreate) -> User:
        """Add a user (committed); AlreadyExistsError if the username or email is
        taken.

        Both are checked by one query before the slow hash; the error names the
        one taken for an admin's terminal, its public words (what the HTTP API
        says) do not, and the timing is the same for either.
        """
        taken = await self.users.taken_field(data.username, data.email)
        if taken is not None:
            shown = data.username if taken == "username" else data.email
            raise AlreadyExistsError(
                f"{taken} {shown!r} is taken", public=USERNAME_OR_EMAIL_TAKEN
            )
        password_hash = await self._hash(data.password)
        user = await self.users.add(data, password_hash=password_hash)
        await audit.record(self.users.session, "user_created", subject=str(user.id))
        await self._commit()
        return user

    async def set_password(self, user: User, new: PasswordSet) -> int:
        """Replace the password; every refresh token of the user dies. Returns count."""
        password_hash = await self._hash(new.password)
        revoked = await self._store_password(user, password_hash, replacing=None)
        await self._commit()
        return revoked

    async def _commit(self) -> None:
        assert self.uow is not None  # set by __post_init__
        await self.uow.commit()

    async def _hash(self, password: str) -> str:
        """Hash with no transaction open: on SQLite one holds the only write
        lock, on PostgreSQL a pooled connection, and a hash takes a few hundred
        milliseconds (longer while it waits its turn behind a login storm)."""
        await self._commit()
        return await self.hasher.hash(password)

    async def _store_password(
        self, user: User, password_hash: str, *, replacing: str | None
    ) -> int:
        now = self.clock()
        stored = await self.users.replace_password_hash(
            user, password_hash, changed_at=now, replacing=replacing
        )
        if not stored and replacing is not None:
            # Another change came first: the password checked is not current.
            raise InvalidValueError(
                "the current password is wrong", field="current_password"
            )
        if not stored:
            raise NotFoundError(f"no user {user.id}")
        revoked = await self._revoke_everything(user, at=now)
        await audit.record(
            self.users.session,
            "user_password_changed",
            subject=str(user.id),
            revoked=revoked,
        )
        return revoked

    async def set_email(self, user: User, email: str | None) -> None:
        """Change the email (unverified again); AlreadyExistsError if taken."""
        await self.users.set_email(user, email)
        await self._commit()

    async def update(self, user: User, changes: UserUpdate) -> None:
        """An admin's changes: the fields present, together in one transaction.

        Setting a flag to the value it has is no change, and no audit record.
        """
        if "email" in changes.model_fields_set:
            await self.users.set_email(user, changes.email)
        if changes.is_active is not None and changes.is_active != user.is_active:
            await self._set_active(user, changes.is_active)
        if changes.is_admin is not None and changes.is_admin != user.is_admin:
            await self._set_admin(user, changes.is_admin)
        await self._commit()

    async def set_active(self, user: User, active: bool) -> int:
        """Enable or disable; disabling revokes every refresh token. Returns count."""
        revoked = await self._set_active(user, active)
        await self._commit()
        return revoked

    async def _set_active(self, user: User, active: bool) -> int:
        user.is_active = active
        await self.users.session.flush()
        revoked = 0
        if not active:
            revoked = await self._revoke_everything(user, at=self.clock())
        await audit.record(
            self.users.session,
            "user_enabled" if active else "user_disabled",
            subject=str(user.id),
            revoked=revoked,
        )
        return revoked

    async def set_admin(self, user: User, admin: bool) -> None:
        await self._set_admin(user, admin)
        await self._commit()

    async def _set_admin(self, user: User, admin: bool) -> None:
        user.is_admin = admin
        await self.users.session.flush()
        await audit.record(
            self.users.session,
            "user_admin_granted" if admin else "user_admin_revoked",
            subject=str(user.id),
        )

    async def delete(self, user: User) -> None:
        """Delete the user; their refresh tokens go with them (ON DELETE CASCADE)."""
        await self._revoke_everything(user, at=self.clock())
        subject = str(user.id)
        await self.users.delete(user)
        await audit.record(self.users.session, "user_deleted", subject=subject)
        await self._commit()

    async def _revoke_everything(self, user: User, *, at: datetime) -> int:
        """End the user's sessions and revoke their refresh tokens; returns the
        refresh-token count."""
        await LoginSessionRepository(self.users.session).end_for_user(user.id, at=at)
        return await self.refresh_tokens.revoke_for_user(user.id, at=at)

    async def unlock(self, user: User) -> None:
        """Clear the brute-force lock and the failure count."""
        await self.users.clear_failed_logins(user)
        await audit.record(self.users.session, "user_unlocked", subject=str(user.id))
        await self._commit()

    async def change_password(
        self,
        user: User,
        change: PasswordChange,
        *,
        lock_policy: LockPolicy,
        client_id: str | None = None,
    ) -> int:
        """A user's own change: the current password must match. Returns revoked count.

        The current password is checked like a login, so a stolen access token
        cannot be used to guess the password without meeting the lock.
        """
        assert self.uow is not None  # set by __post_init__
        check = await check_password(
            self.uow,
            self.users,
            self.hasher,
            user,
            change.current_password,
            now=self.clock(),
            lock_policy=lock_policy,
        )
        if check.refusal is not None:
            await self._refuse_current_password(user, check.refusal, client_id)
        # No rehash: the new password's hash replaces the stored one anyway. It
        # replaces only the hash just checked, should another change race this.
        checked_hash = user.password_hash
        password_hash = await self._hash(change.new_password)
        revoked = await self._store_password(
            user, password_hash, replacing=checked_hash
        )
        await self._commit()
        return revoked

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
        # the audit row must outlive it (the failure is counted already).
        await self._commit()
        # Locked reads the same as wrong, as at the token endpoint: the answer
        # must not tell a guesser that the lock has started.
        raise InvalidValueError(
            "the current password is wrong", field="current_password"
        )
