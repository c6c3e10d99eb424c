"""The bearer-token dependency (RFC 6750) as every protected route sees it."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from authserver.api.state import app_state
from authserver.crud.client import ClientRepository
from authserver.crud.user import UserRepository
from tests.api.helpers import (
    ME_URL,
    USERINFO_URL,
    access_claims,
    assert_bearer_error,
    bearer,
    forged_token,
    hs256_with_public_key,
    revoke,
    sign_token,
    unsigned_token,
    user_tokens,
)
from tests.factories import make_client, make_user, user_service


async def test_valid_token_reaches_the_route(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    access = (await user_tokens(api, client, user.username))["access_token"]

    response = await api.get(ME_URL, headers=bearer(access))

    assert response.status_code == 200
    assert response.json()["id"] == str(user.id)
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
    ids=["no-header", "basic-scheme", "bearer-without-token"],
)
async def test_no_bearer_token_gets_a_bare_challenge(api, headers):
    response = await api.get(ME_URL, headers=headers)

    assert_bearer_error(response, 401, None)
    assert response.headers["www-authenticate"] == 'Bearer realm="authserver"'
    assert response.json()["error"] == "invalid_request"


async def _revoked(api, app, client, user):
    access = (await user_tokens(api, client, user.username))["access_token"]
    assert (await revoke(api, client, access)).status_code == 200
    return access


async def _refresh_token(api, app, client, user):
    return (await user_tokens(api, client, user.username))["refresh_token"]


async def _id_token(api, app, client, user):
    return (await user_tokens(api, client, user.username, scope="openid profile"))[
        "id_token"
    ]


async def _other_audience(api, app, client, user):
    other = await make_client(app_state(app).session_factory, audience="urn:orders")
    return (await user_tokens(api, other, user.username))["access_token"]


async def _password_changed(api, app, client, user):
    access = (await user_tokens(api, client, user.username))["access_token"]
    async with app_state(app).session_factory() as session:
        stored = await UserRepository(session).get(user.id)
        stored.password_changed_at = datetime.now(UTC) + timedelta(seconds=2)
        await session.commit()
    return access


async def _user_disabled(api, app, client, user):
    access = (await user_tokens(api, client, user.username))["access_token"]
    async with app_state(app).session_factory() as session:
        service = user_service(session)
        await service.set_active(await service.users.get(user.id), False)
        await session.commit()
    return access


async def _user_deleted(api, app, client, user):
    access = (await user_tokens(api, client, user.username))["access_token"]
    async with app_state(app).session_factory() as session:
        service = user_service(session)
        await service.delete(await service.users.get(user.id))
        await session.commit()
    return access


async def _client_deleted(api, app, client, user):
    access = (await user_tokens(api, client, user.username))["access_token"]
    async with app_state(app).session_factory() as session:
        repo = ClientRepository(session)
        await repo.delete(await repo.get(client.client.id))
        await session.commit()
    return access


def _literal(token):
    async def make(api, app, client, user):
        return token

    return make


def _signed(typ="at+jwt", **overrides):
    async def make(api, app, client, user):
        return sign_token(app, access_claims(user.id, client, **overrides), typ=typ)

    return make


def _crafted(craft):
    async def make(api, app, client, user):
        return craft(app, access_claims(user.id, client))

    return make


INVALID = {
    "malformed": _literal("not.a.jwt"),
    "not-b64token": _literal("abc def"),
    "too-long": _literal("a" * 5000),
    "expired": _signed(exp=int(time.time()) - 5, iat=int(time.time()) - 905),
    "forged": _crafted(forged_token),
    "alg-none": _crafted(unsigned_token),
    "hs256-public-key": _crafted(hs256_with_public_key),
    "wrong-typ": _signed(typ="JWT"),
    "wrong-issuer": _signed(iss="https://evil.example"),
    "no-exp": _signed(exp=None),
    "subject-not-a-user": _signed(sub="someone"),
    "unknown-user": _signed(sub="00000000-0000-4000-8000-000000000000"),
    "unknown-client": _signed(client_id="no-such-client"),
    "revoked": _revoked,
    "refresh-typed": _refresh_token,
    "id-token": _id_token,
    "other-audience": _other_audience,
    "password-changed": _password_changed,
    "user-disabled": _user_disabled,
    "user-deleted": _user_deleted,
    "client-deleted": _client_deleted,
}


@pytest.mark.parametrize("make", list(INVALID.values()), ids=list(INVALID))
async def test_invalid_tokens_get_invalid_token(api, app, session_factory, make):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    token = await make(api, app, client, user)

    response = await api.get(ME_URL, headers=bearer(token))

    assert_bearer_error(response, 401, "invalid_token")
    assert set(response.json()) == {"error", "error_description"}


async def test_token_minted_in_the_second_of_the_change_survives(
    api, app, session_factory
):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    now = int(time.time())
    async with session_factory() as session:
        stored = await UserRepository(session).get(user.id)
        stored.password_changed_at = datetime.fromtimestamp(now + 0.9, UTC)
        await session.commit()
    same_second = sign_token(app, access_claims(user.id, client, iat=now))
    before = sign_token(app, access_claims(user.id, client, iat=now - 1))

    assert (await api.get(ME_URL, headers=bearer(same_second))).status_code == 200
    assert (await api.get(ME_URL, headers=bearer(before))).status_code == 401


async def test_missing_scope_is_403_naming_the_scope(api, session_factory):
    client = await make_client(session_factory, scopes=("email",))
    user = await make_user(session_factory)
    access = (await user_tokens(api, client, user.username))["access_token"]

    response = await api.get(ME_URL, headers=bearer(access))

    assert_bearer_error(response, 403, "insufficient_scope")
    assert 'scope="profile"' in response.headers["www-authenticate"]


async def test_userinfo_shares_the_checks(api, app, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    token = forged_token(app, access_claims(user.id, client, scope="openid"))

    response = await api.get(USERINFO_URL, headers=bearer(token))

    assert_bearer_error(response, 401, "invalid_token")


async def test_token_in_the_query_is_not_accepted(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    access = (await user_tokens(api, client, user.username))["access_token"]

    response = await api.get(ME_URL, params={"access_token": access})

    assert_bearer_error(response, 401, None)
