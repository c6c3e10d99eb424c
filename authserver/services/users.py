"""User operations shared by the API and authctl; each rule lives here once.

Disabling, deleting or re-passwording a user revokes their refresh tokens in the
same transaction. Callers own the unit of work and commit once.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from authserver.core.exceptions import (
    AlreadyExistsError,
    InvalidValueError,
    NotFoundError,
)
from authserver.core.security import password_problem
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.user import UserRepository
from authserver.models import User
from authserver.schemas.user import UserCreate
from authserver.services import audit
from authserver.services.passwords import PasswordHasher


@dataclass
class UserService:
    users: UserRepository
    refresh_tokens: RefreshTokenRepository
    hasher: PasswordHasher

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
        now = datetime.now(UTC)
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
                user.id, at=datetime.now(UTC)
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
        await self.refresh_tokens.revoke_for_user(user.id, at=datetime.now(UTC))
        subject = str(user.id)
        await self.users.delete(user)
        await audit.record(self.users.session, "user_deleted", subject=subject)

    async def unlock(self, user: User) -> None:
        """Clear the brute-force lock and the failure count."""
        await self.users.clear_failed_logins(user)
        await audit.record(self.users.session, "user_unlocked", subject=str(user.id))

    async def change_password(self, user: User, current: str, new: str) -> int:
        """A user's own change: the current password must match. Returns revoked count."""
        valid, _ = await self.hasher.verify(current, user.password_hash)
        if not valid:
            raise InvalidValueError(
                "the current password is wrong", field="current_password"
            )
        return await self.set_password(user, new)
