"""The lock's bookkeeping in SQL: counting attempts, locking, forgiving."""

from datetime import UTC, datetime, timedelta

import pytest

from authserver.core.lockout import LockPolicy
from authserver.crud.user import UserRepository
from authserver.db.session import SessionFactory
from authserver.models import User
from tests.factories import make_user

NOW = datetime(2030, 1, 1, tzinfo=UTC)
POLICY = LockPolicy(3, timedelta(seconds=30), timedelta(seconds=300))


async def attempt(factory: SessionFactory, user: User, now: datetime) -> int | None:
    async with factory() as session:
        counted = await UserRepository(session).count_attempt(
            user, now=now, policy=POLICY
        )
        await session.commit()
    return counted


async def forgive(factory: SessionFactory, user: User, counted: int) -> None:
    async with factory() as session:
        await UserRepository(session).forgive_attempts(
            user, counted=counted, policy=POLICY
        )
        await session.commit()


async def stored(factory: SessionFactory, user: User) -> User:
    async with factory() as session:
        found = await UserRepository(session).get(user.id)
    assert found is not None
    return found


@pytest.fixture
async def user(session_factory: SessionFactory, clean_db: None) -> User:
    return await make_user(session_factory)


async def test_the_threshold_th_attempt_locks_and_the_next_is_not_counted(
    session_factory, user
):
    assert [await attempt(session_factory, user, NOW) for _ in range(3)] == [1, 2, 3]
    assert (await stored(session_factory, user)).locked_until == NOW + POLICY.base

    assert await attempt(session_factory, user, NOW + timedelta(seconds=29)) is None
    assert (await stored(session_factory, user)).failed_logins == 3


async def test_lock_ends_in_sql_as_the_policy_says(session_factory, user):
    """The SQL CASE and LockPolicy.until are one rule written twice: they agree,
    from the first lock past the cap."""
    now = NOW
    for failures in range(1, 12):
        assert await attempt(session_factory, user, now) == failures
        locked_until = (await stored(session_factory, user)).locked_until
        assert locked_until == POLICY.until(failures, now)
        if locked_until is None:
            continue
        assert locked_until - now == min(POLICY.base * 2 ** (failures - 3), POLICY.cap)
        now = locked_until + timedelta(seconds=1)


async def test_a_right_password_forgives_the_attempts_up_to_it(session_factory, user):
    for _ in range(3):
        await attempt(session_factory, user, NOW)  # the third locks

    await forgive(session_factory, user, counted=2)  # the right one was second

    after = await stored(session_factory, user)
    # The one counted after it stays counted; alone it is below the threshold.
    assert after.failed_logins == 1 and after.locked_until is None


async def test_forgiving_never_goes_below_zero(session_factory, user):
    await attempt(session_factory, user, NOW)
    await forgive(session_factory, user, counted=1)
    await forgive(session_factory, user, counted=5)  # an admin unlock came between

    after = await stored(session_factory, user)
    assert after.failed_logins == 0 and after.locked_until is None


def test_lock_lengths_double_up_to_the_cap():
    assert POLICY.lengths() == [timedelta(seconds=s) for s in (30, 60, 120, 240, 300)]
    assert LockPolicy(0, timedelta(1), timedelta(1)).until(10, NOW) is None
