"""The bearer-token dependency (RFC 6750) as every protected route sees it."""

import time

import pytest

from authserver.api.state import app_state
from authserver.crud.client import ClientRepository
from authserver.schemas.account import PasswordSet
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
        service = user_service(session)
        await service.set_password(
            await service.resolve(user.username), PasswordSet(password="n3w-secret!")
        )
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


async def test_a_login_right_after_a_password_change_works_at_once(
    api, app, session_factory
):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    before = (await user_tokens(api, client, user.username))["access_token"]
    async with session_factory() as session:
        service = user_service(session)
        await service.set_password(
            await service.resolve(user.username), PasswordSet(password="n3w-secret!")
        )
        await session.commit()

    after = (await user_tokens(api, client, user.username, password="n3w-secret!"))[
        "access_token"
    ]

    # Bound to their families, not to `iat`: the same second decides nothing.
    assert (await api.get(ME_URL, headers=bearer(after))).status_code == 200
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
