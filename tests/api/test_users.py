"""The users API (/api/v1/users) through the in-process app."""

import json
import uuid

import httpx2
import pytest

from tests.api.helpers import (
    ME_URL,
    USERS_URL,
    access_claims,
    assert_bearer_error,
    assert_oauth_error,
    bearer,
    client_credentials_grant,
    password_grant,
    refresh_grant,
    sign_token,
    tokens,
    user_tokens,
)
from tests.factories import DEFAULT_PASSWORD, demote, make_client, make_user

NEW_PASSWORD = "a brand new passphrase"
ALL_SCOPES = ("openid", "profile", "email", "admin")


async def admin_headers(api, session_factory) -> tuple[dict[str, str], object]:
    client = await make_client(session_factory, scopes=ALL_SCOPES)
    admin = await make_user(session_factory, is_admin=True)
    body = await user_tokens(api, client, admin.username, scope="admin profile")
    return bearer(body["access_token"]), admin


async def me_headers(api, session_factory, **user_options):
    client = await make_client(session_factory)
    user = await make_user(session_factory, **user_options)
    body = await user_tokens(api, client, user.username)
    return bearer(body["access_token"]), user, client, body


def raw_json(body: dict, headers: dict[str, str]) -> dict:
    """Request kwargs sending `body` as ASCII JSON (lone surrogates escaped)."""
    return {
        "content": json.dumps(body).encode(),
        "headers": {**headers, "Content-Type": "application/json"},
    }


def assert_error_body(response: httpx2.Response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str)
    assert response.headers["cache-control"] == "no-store"
    return body


def assert_field_error(response: httpx2.Response, field: str) -> None:
    body = assert_error_body(response, 422, "validation_error")
    assert any(error["loc"][-1] == field for error in body["errors"]), body


# --- /me -------------------------------------------------------------------


async def test_read_me(api, session_factory):
    headers, user, _, _ = await me_headers(
        api, session_factory, username="Erin", email="erin@example.org"
    )

    response = await api.get(ME_URL, headers=headers)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["id"] == str(user.id)
    assert body["username"] == "Erin"
    assert body["email"] == "erin@example.org"
    assert body["is_admin"] is False
    assert "password_hash" not in body and "password" not in body


async def test_update_my_email(api, session_factory):
    headers, _, _, _ = await me_headers(api, session_factory, email="old@example.org")

    changed = await api.patch(
        ME_URL, json={"email": "New@Example.org"}, headers=headers
    )
    removed = await api.patch(ME_URL, json={"email": None}, headers=headers)
    untouched = await api.patch(ME_URL, json={}, headers=headers)

    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == "new@example.org"
    assert changed.json()["email_verified"] is False
    assert removed.json()["email"] is None
    assert untouched.status_code == 200
    assert untouched.json()["email"] is None  # read back: the removal was stored


async def test_my_email_taken_is_409(api, session_factory):
    await make_user(session_factory, email="taken@example.org")
    headers, _, _, _ = await me_headers(api, session_factory)

    response = await api.patch(
        ME_URL, json={"email": "taken@example.org"}, headers=headers
    )

    assert_error_body(response, 409, "conflict")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"is_admin": True}, "is_admin"),
        ({"username": "someone-else"}, "username"),
        ({"email": "\ud800@example.org"}, "email"),
        ({"email": "a@b.c\u0000"}, "email"),
    ],
    ids=["bad-email", "is-admin", "username", "email-surrogate", "email-nul"],
)
async def test_update_me_validation(api, session_factory, body, field):
    headers, _, _, _ = await me_headers(api, session_factory)

    response = await api.patch(ME_URL, **raw_json(body, headers))

    assert_field_error(response, field)


async def test_change_my_password(api, app, session_factory):
    headers, user, client, body = await me_headers(api, session_factory)
    # Minted before the change (in the same second, likely): the change kills it.
    old_access = body["access_token"]

    response = await api.post(
        f"{ME_URL}/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )

    assert response.status_code == 204, response.text
    refreshed = await refresh_grant(api, client, body["refresh_token"])
    assert_oauth_error(refreshed, 400, "invalid_grant")
    assert (await api.get(ME_URL, headers=bearer(old_access))).status_code == 401
    old = await password_grant(api, client, user.username)
    assert_oauth_error(old, 400, "invalid_grant")
    tokens(await password_grant(api, client, user.username, NEW_PASSWORD))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"current_password": "wrong one!", "new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": DEFAULT_PASSWORD, "new_password": "short"}, "new_password"),
        ({"current_password": DEFAULT_PASSWORD, "new_password": "\ud800" * 9}, "new_password"),
        ({"current_password": DEFAULT_PASSWORD}, "new_password"),
    ],
    ids=["wrong-current", "too-short", "lone-surrogate", "missing-new"],
)  # fmt: skip
async def test_change_my_password_validation(api, session_factory, body, field):
    headers, _, _, _ = await me_headers(api, session_factory)

    response = await api.post(f"{ME_URL}/password", **raw_json(body, headers))

    assert_field_error(response, field)


async def test_client_credentials_token_on_me_is_403(api, session_factory):
    client = await make_client(
        session_factory, grant_types=("client_credentials",), scopes=("profile",)
    )
    access = tokens(await client_credentials_grant(api, client))["access_token"]

    response = await api.get(ME_URL, headers=bearer(access))

    assert_bearer_error(response, 403, "insufficient_scope")


# --- admin -----------------------------------------------------------------


async def test_list_filters_and_pages(api, session_factory):
    headers, admin = await admin_headers(api, session_factory)
    for name in ("ann", "anna", "bob"):
        await make_user(session_factory, username=name, email=f"{name}@example.org")
    await make_user(session_factory, username="andy", is_active=False)

    page = (await api.get(USERS_URL, params={"limit": 2}, headers=headers)).json()
    an = await api.get(USERS_URL, params={"username": "AN"}, headers=headers)
    inactive = await api.get(USERS_URL, params={"active": "false"}, headers=headers)
    by_email = await api.get(USERS_URL, params={"email": "bob@"}, headers=headers)
    second = await api.get(USERS_URL, params={"limit": 2, "offset": 2}, headers=headers)

    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 0
    assert len(page["items"]) == 2
    assert [u["username"] for u in an.json()["items"]] == ["andy", "ann", "anna"]
    assert [u["username"] for u in inactive.json()["items"]] == ["andy"]
    assert [u["username"] for u in by_email.json()["items"]] == ["bob"]
    assert len(second.json()["items"]) == 2
    assert an.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 10**12}, "offset"),
        ({"username": "a b"}, "username"),
        ({"email": "x\x00"}, "email"),
        ({"active": "maybe"}, "active"),
    ],
    ids=[
        "limit-0",
        "limit-101",
        "limit-not-int",
        "offset-negative",
        "offset-huge",
        "username-bad",
        "email-nul",
        "active-bad",
    ],
)
async def test_list_bounds(api, session_factory, params, field):
    headers, _ = await admin_headers(api, session_factory)

    response = await api.get(USERS_URL, params=params, headers=headers)

    assert_field_error(response, field)


async def test_list_limit_bounds_are_inclusive(api, session_factory):
    headers, _ = await admin_headers(api, session_factory)

    for limit in (1, 100):
        response = await api.get(USERS_URL, params={"limit": limit}, headers=headers)
        assert response.status_code == 200


async def test_create_get_update_delete(api, session_factory):
    headers, _ = await admin_headers(api, session_factory)
    new = {"username": "Frank", "password": NEW_PASSWORD, "email": "f@example.org"}

    created = await api.post(USERS_URL, json=new, headers=headers)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    assert created.headers["location"] == f"{USERS_URL}/{user_id}"
    fetched = await api.get(f"{USERS_URL}/{user_id}", headers=headers)
    assert fetched.json()["username"] == "Frank"

    updated = await api.patch(
        f"{USERS_URL}/{user_id}",
        json={"email": "frank@example.org", "is_admin": True},
        headers=headers,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["email"] == "frank@example.org"
    assert updated.json()["is_admin"] is True

    deleted = await api.delete(f"{USERS_URL}/{user_id}", headers=headers)
    assert deleted.status_code == 204
    gone = await api.get(f"{USERS_URL}/{user_id}", headers=headers)
    assert_error_body(gone, 404, "not_found")


async def test_disabling_a_user_ends_their_sessions(api, session_factory):
    headers, _ = await admin_headers(api, session_factory)
    user_headers, user, client, body = await me_headers(api, session_factory)

    response = await api.patch(
        f"{USERS_URL}/{user.id}", json={"is_active": False}, headers=headers
    )

    assert response.json()["is_active"] is False
    refreshed = await refresh_grant(api, client, body["refresh_token"])
    assert_oauth_error(refreshed, 400, "invalid_grant")
    assert (await api.get(ME_URL, headers=user_headers)).status_code == 401


async def test_admin_sets_a_password(api, session_factory):
    headers, _ = await admin_headers(api, session_factory)
    _, user, client, body = await me_headers(api, session_factory)

    response = await api.post(
        f"{USERS_URL}/{user.id}/password",
        json={"password": NEW_PASSWORD},
        headers=headers,
    )

    assert response.status_code == 204, response.text
    refreshed = await refresh_grant(api, client, body["refresh_token"])
    assert_oauth_error(refreshed, 400, "invalid_grant")
    tokens(await password_grant(api, client, user.username, NEW_PASSWORD))


async def test_duplicates_are_409(api, session_factory):
    headers, _ = await admin_headers(api, session_factory)
    await make_user(session_factory, username="gina", email="gina@example.org")
    other = await make_user(session_factory)

    same_name = await api.post(
        USERS_URL, json={"username": "GINA", "password": NEW_PASSWORD}, headers=headers
    )
    same_email = await api.patch(
        f"{USERS_URL}/{other.id}", json={"email": "gina@example.org"}, headers=headers
    )

    assert_error_body(same_name, 409, "conflict")
    assert_error_body(same_email, 409, "conflict")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "has space", "password": NEW_PASSWORD}, "username"),
        ({"username": "x" * 151, "password": NEW_PASSWORD}, "username"),
        (
            {
                "username": "0b5c2f0e-3d9a-4c8e-9f1a-2b7d6e5c4a39",
                "password": NEW_PASSWORD,
            },
            "username",
        ),
        (
            {"username": "0b5c2f0e3d9a4c8e9f1a2b7d6e5c4a39", "password": NEW_PASSWORD},
            "username",
        ),
        ({"username": "henry", "password": "short"}, "password"),
        ({"username": "henry", "password": "\ud800" * 9}, "password"),
        ({"username": "henry", "password": "p" * 1025}, "password"),
        ({"username": "henry", "password": NEW_PASSWORD, "email": "nope"}, "email"),
        ({"username": "henry", "password": NEW_PASSWORD, "role": "x"}, "role"),
        ({"password": NEW_PASSWORD}, "username"),
    ],
    ids=[
        "username-space",
        "username-long",
        "username-uuid",
        "username-uuid-hex",
        "password-short",
        "password-surrogate",
        "password-long",
        "email-bad",
        "unknown-field",
        "username-missing",
    ],
)
async def test_create_validation(api, session_factory, body, field):
    headers, _ = await admin_headers(api, session_factory)

    response = await api.post(USERS_URL, **raw_json(body, headers))

    assert_field_error(response, field)


@pytest.mark.parametrize(
    "body",
    [{"is_active": None}, {"is_admin": "yes please"}, {"email": 5}],
    ids=["active-null", "admin-not-bool", "email-not-string"],
)
async def test_update_validation(api, session_factory, body):
    headers, _ = await admin_headers(api, session_factory)
    user = await make_user(session_factory)

    response = await api.patch(f"{USERS_URL}/{user.id}", json=body, headers=headers)

    assert_field_error(response, next(iter(body)))


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'"text"', b"", b'{"username": "x"' + b" " * 10],
    ids=["not-json", "array", "string", "empty", "truncated"],
)
async def test_malformed_json_is_422(api, session_factory, content):
    headers, _ = await admin_headers(api, session_factory)

    response = await api.post(
        USERS_URL,
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )

    assert_error_body(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"email": "x@example.org"}),
        ("POST", "/password", {"password": NEW_PASSWORD}),
        ("DELETE", "", None),
    ],
    ids=["get", "patch", "set-password", "delete"],
)
async def test_unknown_user_is_404(api, session_factory, method, suffix, body):
    headers, _ = await admin_headers(api, session_factory)
    url = f"{USERS_URL}/{uuid.uuid4()}{suffix}"

    response = await api.request(method, url, json=body, headers=headers)

    assert_error_body(response, 404, "not_found")


async def test_id_must_be_a_uuid(api, session_factory):
    headers, _ = await admin_headers(api, session_factory)

    response = await api.get(f"{USERS_URL}/not-a-uuid", headers=headers)

    assert_field_error(response, "user_id")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"is_active": False}),
        ("PATCH", "", {"is_admin": False}),
        ("DELETE", "", None),
    ],
    ids=["disable", "demote", "delete"],
)
async def test_admin_cannot_lock_themselves_out(
    api, session_factory, method, suffix, body
):
    headers, admin = await admin_headers(api, session_factory)

    response = await api.request(
        method, f"{USERS_URL}/{admin.id}{suffix}", json=body, headers=headers
    )

    assert_error_body(response, 422, "validation_error")


ADMIN_ROUTES = {
    "list": ("GET", "", None),
    "create": ("POST", "", {"username": "ivan", "password": NEW_PASSWORD}),
    "get": ("GET", "/{id}", None),
    "update": ("PATCH", "/{id}", {"is_admin": True}),
    "set-password": ("POST", "/{id}/password", {"password": NEW_PASSWORD}),
    "delete": ("DELETE", "/{id}", None),
}


async def _plain_user_token(api, session_factory, app):
    headers, _, _, _ = await me_headers(api, session_factory)
    return headers


async def _admin_without_scope(api, session_factory, app):
    client = await make_client(session_factory, scopes=ALL_SCOPES)
    admin = await make_user(session_factory, is_admin=True)
    body = await user_tokens(api, client, admin.username, scope="profile")
    return bearer(body["access_token"])


async def _demoted_admin(api, session_factory, app):
    client = await make_client(session_factory, scopes=ALL_SCOPES)
    user = await make_user(session_factory, is_admin=True)
    body = await user_tokens(api, client, user.username, scope="admin profile")
    # An admin token whose user lost the admin flag after issue.
    await demote(session_factory, user.username)
    return bearer(body["access_token"])


async def _client_token(api, session_factory, app):
    client = await make_client(
        session_factory, grant_types=("client_credentials",), scopes=("admin",)
    )
    claims = access_claims(client.client_id, client, scope="admin")
    return bearer(sign_token(app, claims))


CALLERS = {
    "plain-user": _plain_user_token,
    "admin-without-scope": _admin_without_scope,
    "demoted-admin": _demoted_admin,
    "client-token": _client_token,
}


@pytest.mark.parametrize("caller", list(CALLERS.values()), ids=list(CALLERS))
@pytest.mark.parametrize(
    ("method", "suffix", "body"), list(ADMIN_ROUTES.values()), ids=list(ADMIN_ROUTES)
)
async def test_non_admins_get_403(
    api, app, session_factory, caller, method, suffix, body
):
    target = await make_user(session_factory)
    headers = await caller(api, session_factory, app)

    response = await api.request(
        method,
        USERS_URL + suffix.format(id=target.id),
        json=body,
        headers=headers,
    )

    assert_bearer_error(response, 403, "insufficient_scope")
    assert 'scope="admin"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("method", "suffix", "body"), list(ADMIN_ROUTES.values()), ids=list(ADMIN_ROUTES)
)
async def test_admin_routes_without_token_get_401(
    api, session_factory, method, suffix, body
):
    target = await make_user(session_factory)

    response = await api.request(
        method, USERS_URL + suffix.format(id=target.id), json=body
    )

    assert_bearer_error(response, 401, None)


# --- self-registration -----------------------------------------------------


async def test_self_registration_is_off_by_default(api):
    response = await api.post(
        USERS_URL, json={"username": "mallory", "password": NEW_PASSWORD}
    )

    assert_bearer_error(response, 401, None)


async def test_self_registration_when_on(open_api, session_factory):
    client = await make_client(session_factory)
    new = {"username": "judy", "password": NEW_PASSWORD, "email": "j@example.org"}

    response = await open_api.post(USERS_URL, json=new)

    assert response.status_code == 201, response.text
    assert response.json()["is_admin"] is False
    tokens(await password_grant(open_api, client, "judy", NEW_PASSWORD))


async def test_self_registration_cannot_make_an_admin(open_api):
    new = {"username": "karl", "password": NEW_PASSWORD, "is_admin": True}

    response = await open_api.post(USERS_URL, json=new)

    assert_bearer_error(response, 401, None)


async def test_self_registration_validates_and_detects_duplicates(
    open_api, session_factory
):
    await make_user(session_factory, username="liam")

    weak = await open_api.post(USERS_URL, json={"username": "x", "password": "1"})
    taken = await open_api.post(
        USERS_URL, json={"username": "liam", "password": NEW_PASSWORD}
    )

    assert_field_error(weak, "password")
    assert_error_body(taken, 409, "conflict")


async def test_admin_may_still_create_admins_when_registration_is_on(
    open_api, session_factory
):
    headers, _ = await admin_headers(open_api, session_factory)
    new = {"username": "mia", "password": NEW_PASSWORD, "is_admin": True}

    response = await open_api.post(USERS_URL, json=new, headers=headers)

    assert response.status_code == 201
    assert response.json()["is_admin"] is True
