"""Brute-force lockout at the password grant, and the audit trail it writes."""

from datetime import timedelta

from authserver.crud.audit import AuditRepository
from authserver.crud.user import UserRepository
from tests.api.helpers import assert_oauth_error, password_grant, refresh_grant, tokens
from tests.factories import make_client, make_user

THRESHOLD = 5  # AUTH_LOCKOUT_THRESHOLD default
BASE = timedelta(seconds=30)  # AUTH_LOCKOUT_BASE default


async def fail(api, client, username, times):
    for _ in range(times):
        assert_oauth_error(
            await password_grant(api, client, username, password="wrong password"),
            400,
            "invalid_grant",
        )


async def test_account_locks_after_threshold_with_the_same_answer(
    api, session_factory, clock
):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    await fail(api, client, user.username, THRESHOLD)

    locked = await password_grant(api, client, user.username)
    unknown = await password_grant(api, client, "no-such-user")

    assert_oauth_error(locked, 400, "invalid_grant")
    assert locked.json() == unknown.json()  # a lock reveals nothing
    clock(BASE + timedelta(seconds=1))
    assert tokens(await password_grant(api, client, user.username))
    async with session_factory() as session:
        stored = await UserRepository(session).get(user.id)
    assert stored.failed_logins == 0 and stored.locked_until is None


async def test_backoff_grows_with_each_further_failure(api, session_factory, clock):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    await fail(api, client, user.username, THRESHOLD)
    clock(BASE + timedelta(seconds=1))

    await fail(api, client, user.username, 1)  # the sixth failure: locked for 2 x base

    clock(BASE + timedelta(seconds=1))
    assert_oauth_error(
        await password_grant(api, client, user.username), 400, "invalid_grant"
    )
    clock(BASE)
    assert tokens(await password_grant(api, client, user.username))


async def test_success_before_threshold_resets_the_count(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    await fail(api, client, user.username, THRESHOLD - 1)

    tokens(await password_grant(api, client, user.username))
    await fail(api, client, user.username, THRESHOLD - 1)

    assert tokens(await password_grant(api, client, user.username))


async def test_logins_and_reuse_are_audited(api, session_factory, clock):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    await fail(api, client, user.username, 1)
    first = tokens(await password_grant(api, client, user.username))
    tokens(await refresh_grant(api, client, first["refresh_token"]))
    clock(timedelta(seconds=11))
    await refresh_grant(api, client, first["refresh_token"])

    async with session_factory() as session:
        events = list(
            reversed(await AuditRepository(session).list(subject=str(user.id)))
        )

    assert [e.event for e in events] == [
        "user_created",
        "login_failed",
        "login_succeeded",
        "refresh_token_reuse_detected",
    ]
    failed = events[1]
    assert failed.client_id == client.client_id
    assert failed.ip == "127.0.0.1"
    assert failed.request_id
    assert failed.detail == {"reason": "wrong_password"}
    assert events[3].detail["revoked"] >= 1
