"""User repository."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authserver.core.exceptions import AlreadyExistsError
from authserver.core.lockout import LockPolicy
from authserver.crud.common import rowcount
from authserver.models import User
from authserver.schemas.user import UserCreate, username_key


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, or None."""
        return await self.session.get(User, user_id)

    async def get_by_username(self, username: str) -> User | None:
        """The user with this username, compared case-insensitively."""
        stmt = select(User).where(User.username_key == username_key(username))
        return await self.session.scalar(stmt)

    async def list(
        self,
        *,
        offset: int = 0,
        limit: int = 100,
        username_prefix: str | None = None,
        email_prefix: str | None = None,
        is_active: bool | None = None,
    ) -> tuple[Sequence[User], int]:
        """A page of users ordered by username, and the total matching count."""
        stmt = select(User)
        if username_prefix:
            key = _escape_like(username_key(username_prefix))
            stmt = stmt.where(User.username_key.like(f"{key}%", escape="\\"))
        if email_prefix:
            key = _escape_like(email_prefix.lower())
            stmt = stmt.where(User.email.like(f"{key}%", escape="\\"))
        if is_active is not None:
            stmt = stmt.where(User.is_active == is_active)
        total = await self.session.scalar(
            select(func.count()).select_from(stmt.subquery())
        )
        page = await self.session.scalars(
            stmt.order_by(User.username_key).offset(offset).limit(limit)
        )
        return page.all(), total or 0

    async def add(self, data: UserCreate, *, password_hash: str) -> User:
        """Insert a user; AlreadyExistsError if the username or email is taken."""
        user = User(
            username=data.username,
            username_key=username_key(data.username),
            email=data.email.lower() if data.email else None,
            password_hash=password_hash,
            is_admin=data.is_admin,
        )
        self.session.add(user)
        await self._flush(f"username {data.username!r} or its email is taken")
        return user

    async def set_email(self, user: User, email: str | None) -> None:
        """Change the email (unverified again); AlreadyExistsError if taken."""
        user.email = email.lower() if email else None
        user.email_verified = False
        await self._flush("that email is taken")

    async def set_password_hash(
        self, user: User, password_hash: str, *, changed_at: datetime | None
    ) -> None:
        """Store a new hash; `changed_at` marks a real change (not a rehash)."""
        user.password_hash = password_hash
        if changed_at is not None:
            user.password_changed_at = changed_at
        await self.session.flush()

    async def upgrade_password_hash(self, user: User, *, old: str, new: str) -> bool:
        """Swap in a stronger hash of the same password, unless it changed meanwhile."""
        stmt = (
            update(User)
            .where(User.id == user.id, User.password_hash == old)
            .values(password_hash=new)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return rowcount(result) == 1

    async def register_failed_login(
        self, user: User, *, now: datetime, lock_for: LockPolicy
    ) -> datetime | None:
        """Count a failed password; lock the account once over the threshold.

        The count is incremented in SQL, so concurrent failures at several
        workers all count. Returns the lock's end when this failure locks.
        """
        stmt = (
            update(User)
            .where(User.id == user.id)
            .values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)
        )
        failures = int((await self.session.execute(stmt)).scalar_one())
        locked_until = lock_for.until(failures, now)
        if locked_until is not None:
            await self.session.execute(
                update(User).where(User.id == user.id).values(locked_until=locked_until)
            )
        return locked_until

    async def clear_failed_logins(self, user: User) -> None:
        user.failed_logins = 0
        user.locked_until = None
        await self.session.flush()

    async def delete(self, user: User) -> None:
        await self.session.delete(user)
        await self.session.flush()

    async def _flush(self, conflict: str) -> None:
        try:
            await self.session.flush()
        except IntegrityError as exc:
            # The transaction is unusable now: the unit of work ends it.
            raise AlreadyExistsError(conflict) from exc


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
