"""User repository."""

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from authserver.core.exceptions import AlreadyExistsError
from authserver.core.lockout import LockPolicy
from authserver.crud.common import rowcount
from authserver.models import User
from authserver.models.base import UTCDateTime
from authserver.schemas.user import UserCreate, username_key

# What the HTTP API says of either conflict: which of the two is taken is none
# of a stranger's business (the enumeration policy in docs/endpoints.md).
USERNAME_OR_EMAIL_TAKEN = "the username or the email is taken"
EMAIL_TAKEN = "that email is taken"


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

    async def get_usernames(
        self, user_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, str]:
        """The usernames of those of these ids that still exist."""
        if not user_ids:
            return {}
        stmt = select(User.id, User.username).where(User.id.in_(user_ids))
        return {row.id: row.username for row in await self.session.execute(stmt)}

    async def taken_field(
        self, username: str, email: str | None
    ) -> Literal["username", "email"] | None:
        """Which of this username and (when given) email another account has.

        One query either way, so the time taken does not tell which.
        """
        key = username_key(username)
        clash = User.username_key == key
        if email:
            clash = or_(clash, User.email == email.lower())
        stmt = select(User.username_key).where(clash).limit(1)
        found = await self.session.scalar(stmt)
        if found is None:
            return None
        return "username" if found == key else "email"

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
        await self._flush(USERNAME_OR_EMAIL_TAKEN)
        return user

    async def set_email(self, user: User, email: str | None) -> None:
        """Change the email (unverified again); AlreadyExistsError if taken."""
        user.email = email.lower() if email else None
        user.email_verified = False
        await self._flush(EMAIL_TAKEN)

    async def replace_password_hash(
        self,
        user: User,
        password_hash: str,
        *,
        changed_at: datetime,
        replacing: str | None = None,
    ) -> bool:
        """Store a new password's hash, only over `replacing` when given.

        False when no row matched: the user is gone, or the stored hash is no
        longer `replacing` (a concurrent change came first).
        """
        stmt = update(User).where(User.id == user.id)
        if replacing is not None:
            stmt = stmt.where(User.password_hash == replacing)
        result = await self.session.execute(
            stmt.values(password_hash=password_hash, password_changed_at=changed_at)
        )
        return rowcount(result) == 1

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

    async def count_attempt(
        self, user: User, *, now: datetime, policy: LockPolicy
    ) -> int | None:
        """Count a password attempt as failed before it is checked; None if refused.

        One atomic UPDATE decides. Below the threshold an attempt is counted
        (attempts still being checked count too) but sets no lock: parallel
        attempts queue on the row, so at most `threshold` of a burst are let
        through and the rest are refused, yet right passwords arriving together
        lock nobody out — only checked failures set the lock
        (`record_failure`). Once a lock has run out, one attempt at a time is
        let through and it sets the next, longer lock at once. Returns this
        attempt's place in the count (see forgive_attempts).
        """
        failures = User.failed_logins + 1
        may_try: ColumnElement[bool] = true()
        next_lock: Any = User.locked_until
        if policy.threshold > 0:
            may_try = or_(
                and_(
                    User.locked_until.is_(None), User.failed_logins < policy.threshold
                ),
                User.locked_until <= now,
            )
            next_lock = case(
                (User.locked_until.is_(None), User.locked_until),
                else_=_lock_end(policy, failures, now),
            )
        stmt = (
            update(User)
            .where(User.id == user.id, may_try)
            .values(failed_logins=failures, locked_until=next_lock)
            .returning(User.failed_logins)
            .execution_options(synchronize_session=False)
        )
        counted = (await self.session.execute(stmt)).scalar_one_or_none()
        return None if counted is None else int(counted)

    async def record_failure(
        self, user: User, *, now: datetime, policy: LockPolicy
    ) -> None:
        """A counted attempt was checked and wrong: lock once the failures
        reach the threshold (the count itself was made by count_attempt)."""
        if policy.threshold <= 0:
            return
        stmt = (
            update(User)
            .where(
                User.id == user.id,
                User.failed_logins >= policy.threshold,
                User.locked_until.is_(None),
            )
            .values(locked_until=_lock_end(policy, User.failed_logins, now))
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def forgive_attempts(
        self, user: User, *, counted: int, policy: LockPolicy
    ) -> None:
        """The right password came with attempt number `counted`: the failures
        counted up to it are forgiven, and the lock unless later ones still
        reach the threshold. Attempts counted after it stay counted, as they
        would had they come one by one after the success."""
        remaining = case(
            (User.failed_logins > counted, User.failed_logins - counted), else_=0
        )
        locked_until = (
            case((remaining >= policy.threshold, User.locked_until), else_=None)
            if policy.threshold > 0
            else None
        )
        stmt = (
            update(User)
            .where(User.id == user.id)
            .values(failed_logins=remaining, locked_until=locked_until)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

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


def _lock_end(
    policy: LockPolicy,
    failures: ColumnElement[int] | InstrumentedAttribute[int],
    now: datetime,
) -> Any:
    """The lock end as SQL: unchanged below the threshold, else `policy.until`."""
    if policy.threshold <= 0:
        return User.locked_until
    lengths = policy.lengths()
    steps = [
        (failures == policy.threshold + step, literal(now + length, UTCDateTime))
        for step, length in enumerate(lengths[:-1])
    ]
    return case(
        (failures < policy.threshold, User.locked_until),
        *steps,
        else_=literal(now + lengths[-1], UTCDateTime),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
