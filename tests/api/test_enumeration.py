"""What a stranger or an ordinary user can learn about other accounts.

The policy (docs/endpoints.md, "Enumeration"): a refused sign-up says only
that the username or the email is taken, never which; an email change to an
address in use says that it is in use (the change cannot be made) and nothing
about the account that has it; the token endpoint answers every failed
password login alike, after the same bcrypt work.
"""

from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI

from authserver.api.state import app_state
from tests.api.helpers import ME_URL, USERS_URL, bearer, password_grant, user_tokens
from tests.factories import DEFAULT_PASSWORD, make_client, make_user

NEW_PASSWORD = "a brand new passphrase"


def answer(response: httpx2.Response) -> tuple[int, Any, dict[str, str]]:
    """Everything a caller sees, less what differs per request anyway."""
    headers = {
        name: value
        for name, value in response.headers.items()
        if name not in {"x-request-id", "date", "content-length"}
    }
    return response.status_code, response.json(), headers


async def test_sign_up_conflicts_do_not_say_which_field(open_api, session_factory):
    await make_user(session_factory, username="olga", email="olga@example.org")
    await make_user(session_factory, username="pete", email="pete@example.org")
    attempts = {
        "username": {"username": "OLGA", "email": "fresh@example.org"},
        "email": {"username": "fresh-name", "email": "Olga@Example.org"},
        "username-without-email": {"username": "olga"},
        "both-one-account": {"username": "olga", "email": "olga@example.org"},
        "both-two-accounts": {"username": "olga", "email": "pete@example.org"},
    }

    answers = {
        case: answer(
            await open_api.post(USERS_URL, json={**body, "password": NEW_PASSWORD})
        )
        for case, body in attempts.items()
    }

    first = answers["username"]
    assert first[0] == 409 and first[1]["error"] == "conflict"
    assert "olga" not in first[1]["error_description"].lower()
    assert all(seen == first for seen in answers.values()), answers


async def test_admins_get_the_same_vague_conflict(api, session_factory):
    """Admins can look the account up (GET /api/v1/users?email=): the API has
    one wording for everyone rather than one per caller."""
    client = await make_client(session_factory, scopes=("profile", "admin"))
    admin = await make_user(session_factory, is_admin=True)
    headers = bearer(
        (await user_tokens(api, client, admin.username, scope="admin"))["access_token"]
    )
    await make_user(session_factory, username="quinn", email="quinn@example.org")

    by_name = await api.post(
        USERS_URL,
        json={"username": "quinn", "password": NEW_PASSWORD},
        headers=headers,
    )
    by_email = await api.post(
        USERS_URL,
        json={
            "username": "rae",
            "email": "quinn@example.org",
            "password": NEW_PASSWORD,
        },
        headers=headers,
    )

    assert answer(by_name) == answer(by_email)
    assert by_name.status_code == 409


async def test_email_change_conflicts_say_nothing_of_the_owner(api, session_factory):
    client = await make_client(session_factory)
    me = await make_user(session_factory, email="me@example.org")
    await make_user(session_factory, email="active@example.org")
    await make_user(session_factory, email="gone@example.org", is_active=False)
    await make_user(session_factory, email="boss@example.org", is_admin=True)
    headers = bearer((await user_tokens(api, client, me.username))["access_token"])

    answers = {
        email: answer(await api.patch(ME_URL, json={"email": email}, headers=headers))
        for email in ("active@example.org", "GONE@example.org", "boss@example.org")
    }
    own = await api.patch(ME_URL, json={"email": "ME@example.org"}, headers=headers)

    first = next(iter(answers.values()))
    assert first[0] == 409 and first[1] == {
        "error": "conflict",
        "error_description": "that email is taken",
    }
    assert all(seen == first for seen in answers.values()), answers
    assert own.status_code == 200 and own.json()["email"] == "me@example.org"


async def test_other_accounts_are_403_to_ordinary_users_whether_they_exist(
    api, session_factory
):
    client = await make_client(session_factory)
    me = await make_user(session_factory)
    other = await make_user(session_factory, email="other@example.org")
    headers = bearer((await user_tokens(api, client, me.username))["access_token"])

    existing = await api.get(f"{USERS_URL}/{other.id}", headers=headers)
    missing = await api.get(
        f"{USERS_URL}/00000000-0000-4000-8000-000000000000", headers=headers
    )
    search = await api.get(
        USERS_URL, params={"email": "other@example.org"}, headers=headers
    )

    assert answer(existing) == answer(missing) == answer(search)
    assert existing.status_code == 403


@pytest.fixture
def bcrypt_verifies(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords each bcrypt verify was asked about (the real verify runs)."""
    hasher = app_state(app).hasher
    real: Callable[..., Any] = hasher.verify
    seen: list[str] = []

    async def counting(password: str, password_hash: str) -> Any:
        seen.append(password)
        return await real(password, password_hash)

    monkeypatch.setattr(hasher, "verify", counting)
    return seen


async def test_failed_logins_look_alike_and_cost_alike(
    api, app, session_factory, bcrypt_verifies
):
    client = await make_client(session_factory)
    known = await make_user(session_factory, email="known@example.org")
    disabled = await make_user(session_factory, is_active=False)
    locked = await make_user(session_factory)
    for _ in range(app_state(app).lock_policy.threshold):
        await password_grant(api, client, locked.username, "not the password")
    attempts = {
        "unknown-user": ("nobody-by-that-name", "whatever password"),
        "wrong-password": (known.username, "not the password"),
        "username-in-another-case": (known.username.upper(), "not the password"),
        "email-is-no-username": ("known@example.org", DEFAULT_PASSWORD),
        "disabled-right-password": (disabled.username, DEFAULT_PASSWORD),
        "locked-right-password": (locked.username, DEFAULT_PASSWORD),
    }
    bcrypt_verifies.clear()

    answers = {}
    for case, (username, password) in attempts.items():
        before = len(bcrypt_verifies)
        answers[case] = answer(await password_grant(api, client, username, password))
        assert len(bcrypt_verifies) - before == 1, f"{case}: not one bcrypt verify"

    first = answers["unknown-user"]
    assert first[0] == 400 and first[1] == {
        "error": "invalid_grant",
        "error_description": "invalid username or password",
    }
    assert first[2]["cache-control"] == "no-store"
    assert all(seen == first for seen in answers.values()), answers
