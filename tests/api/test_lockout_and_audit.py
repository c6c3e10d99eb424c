"""Brute-force lockout at the password grant and at the password change, and the
audit trail both write."""

from datetime import timedelta

from authserver.crud.audit import AuditRepository
from authserver.crud.user import UserRepository
from tests.api.helpers import (
    ME_URL,
    assert_oauth_error,
    bearer,
    password_grant,
    refresh_grant,
    tokens,
    user_tokens,
)
from tests.factories import DEFAULT_PASSWORD, make_client, make_user

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


# --- POST /api/v1/users/me/password ------------------------------------------

CHANGE_URL = f"{ME_URL}/password"
NEW_PASSWORD = "a brand new passphrase"
WRONG_ANSWER = {
    "error": "validation_error",
    "error_description": "the current password is wrong",
}


async def change_password(api, headers, current, new=NEW_PASSWORD):
    body = {"current_password": current, "new_password": new}
    return await api.post(CHANGE_URL, json=body, headers=headers)


async def refused_change(api, headers, current):
    """The wrong-password answer; returns its body."""
    response = await change_password(api, headers, current)
    assert response.status_code == 422, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert {key: body[key] for key in WRONG_ANSWER} == WRONG_ANSWER
    assert [error["loc"][-1] for error in body["errors"]] == ["current_password"]
    return body


async def stored_user(session_factory, user):
    async with session_factory() as session:
        return await UserRepository(session).get(user.id)


async def logged_in_user(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    headers = bearer((await user_tokens(api, client, user.username))["access_token"])
    return client, user, headers


async def test_wrong_current_passwords_lock_the_account(api, session_factory, settings):
    client, user, headers = await logged_in_user(api, session_factory)
    threshold = settings.lockout_threshold

    for _ in range(threshold):
        await refused_change(api, headers, "wrong password")

    locked = await password_grant(api, client, user.username)
    assert_oauth_error(locked, 400, "invalid_grant")
    stored = await stored_user(session_factory, user)
    assert stored.failed_logins == threshold and stored.locked_until is not None
    async with session_factory() as session:
        events = await AuditRepository(session).list(
            subject=str(user.id), event="login_failed"
        )
    reasons = [(e.client_id, e.detail) for e in reversed(events)]
    changes = [
        (client.client_id, {"reason": "wrong_password", "via": "password_change"})
    ]
    grants = [(client.client_id, {"reason": "locked"})]
    assert reasons == changes * threshold + grants


async def test_locked_account_cannot_change_its_password(
    api, session_factory, settings, clock
):
    client, user, headers = await logged_in_user(api, session_factory)
    before = await stored_user(session_factory, user)
    await fail(api, client, user.username, settings.lockout_threshold)

    right = await refused_change(api, headers, DEFAULT_PASSWORD)
    wrong = await refused_change(api, headers, "wrong password")

    assert right == wrong  # the lock shows nowhere in the answer
    after = await stored_user(session_factory, user)
    assert after.password_hash == before.password_hash
    assert after.password_changed_at == before.password_changed_at
    clock(settings.lockout_base + timedelta(seconds=1))
    assert tokens(await password_grant(api, client, user.username))
    assert_oauth_error(
        await password_grant(api, client, user.username, NEW_PASSWORD),
        400,
        "invalid_grant",
    )


async def test_correct_change_resets_the_count(api, session_factory, settings):
    client, user, headers = await logged_in_user(api, session_factory)
    below = settings.lockout_threshold - 1
    for _ in range(below):
        await refused_change(api, headers, "wrong password")
    assert (await stored_user(session_factory, user)).failed_logins == below

    changed = await change_password(api, headers, DEFAULT_PASSWORD)

    assert changed.status_code == 204, changed.text
    stored = await stored_user(session_factory, user)
    assert stored.failed_logins == 0 and stored.locked_until is None
    # Had the count survived, these would reach the threshold and lock.
    await fail(api, client, user.username, below)
    assert tokens(await password_grant(api, client, user.username, NEW_PASSWORD))


async def test_api_audit_records_name_the_token_holder_and_address(
    api, session_factory
):
    _, user, headers = await logged_in_user(api, session_factory)

    await refused_change(api, headers, "wrong password")

    async with session_factory() as session:
        (event,) = await AuditRepository(session).list(
            subject=str(user.id), event="login_failed"
        )
    assert event.actor == f"user:{user.id}"
    assert event.ip == "127.0.0.1"
