"""Token introspection (RFC 7662) through the in-process app."""

import pytest

from authserver.api.state import app_state
from authserver.crud.user import UserRepository
from tests.api.helpers import (
    INTROSPECT_URL,
    access_claims,
    assert_oauth_error,
    forged_token,
    hs256_with_public_key,
    introspect,
    refresh_grant,
    revoke,
    sign_token,
    tokens,
    unsigned_token,
    unverified,
    user_tokens,
)
from tests.factories import make_client, make_user, user_service

ACTIVE_FIELDS = {"active", "scope", "client_id", "username", "token_type"} | {
    "exp",
    "iat",
    "sub",
    "aud",
    "iss",
    "jti",
}


async def test_active_access_token(api, session_factory):
    client = await make_client(session_factory)
    resource = await make_client(session_factory, grant_types=("client_credentials",))
    user = await make_user(session_factory, username="Carol")
    access = (await user_tokens(api, client, "carol", scope="profile email"))[
        "access_token"
    ]
    claims = unverified(access)[1]

    info = await introspect(api, resource, access)

    assert set(info) == ACTIVE_FIELDS
    assert info["active"] is True
    assert info["scope"] == "profile email"
    assert info["client_id"] == client.client_id
    assert info["username"] == "Carol"
    assert info["token_type"] == "Bearer"
    assert info["sub"] == str(user.id)
    assert info["aud"] == info["iss"] == "http://localhost"
    assert (info["exp"], info["iat"], info["jti"]) == (
        claims["exp"],
        claims["iat"],
        claims["jti"],
    )


async def test_access_token_for_another_audience(api, session_factory):
    client = await make_client(session_factory, audience="urn:orders")
    user = await make_user(session_factory)
    access = (await user_tokens(api, client, user.username))["access_token"]

    info = await introspect(api, client, access)

    assert info["active"] is True and info["aud"] == "urn:orders"


async def test_refresh_token_by_its_own_client(api, session_factory):
    client = await make_client(session_factory)
    other = await make_client(session_factory)
    user = await make_user(session_factory)
    refresh = (await user_tokens(api, client, user.username))["refresh_token"]

    own = await introspect(api, client, refresh, token_type_hint="refresh_token")
    foreign = await introspect(api, other, refresh)

    assert own["active"] is True
    assert own["client_id"] == client.client_id
    assert own["username"] == user.username
    assert own["jti"] == unverified(refresh)[1]["jti"]
    assert "token_type" not in own
    assert foreign == {"active": False}


async def test_rotated_refresh_token_is_inactive(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    first = (await user_tokens(api, client, user.username))["refresh_token"]
    second = tokens(await refresh_grant(api, client, first))["refresh_token"]

    assert await introspect(api, client, first) == {"active": False}
    assert (await introspect(api, client, second))["active"] is True


async def test_unknown_hint_is_ignored(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    access = (await user_tokens(api, client, user.username))["access_token"]

    info = await introspect(api, client, access, token_type_hint="urn:x:unknown")

    assert info["active"] is True


async def _revoked(api, app, client, user):
    access = (await user_tokens(api, client, user.username))["access_token"]
    assert (await revoke(api, client, access)).status_code == 200
    return access


async def _refresh_revoked(api, app, client, user):
    refresh = (await user_tokens(api, client, user.username))["refresh_token"]
    assert (await revoke(api, client, refresh)).status_code == 200
    return refresh


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
        await service.delete(await UserRepository(session).get(user.id))
        await session.commit()
    return access


async def _id_token(api, app, client, user):
    return (await user_tokens(api, client, user.username, scope="openid"))["id_token"]


def _signed(**overrides):
    async def make(api, app, client, user):
        return sign_token(app, access_claims(user.id, client, **overrides))

    return make


def _crafted(craft):
    async def make(api, app, client, user):
        return craft(app, access_claims(user.id, client))

    return make


async def _garbage(api, app, client, user):
    return "definitely not a token"


INACTIVE = {
    "garbage": _garbage,
    "expired": _signed(exp=1_000_000, iat=999_000),
    "other-issuer": _signed(iss="https://evil.example"),
    "no-jti": _signed(jti=None),
    "forged": _crafted(forged_token),
    "alg-none": _crafted(unsigned_token),
    "hs256-public-key": _crafted(hs256_with_public_key),
    "revoked": _revoked,
    "refresh-revoked": _refresh_revoked,
    "user-disabled": _user_disabled,
    "user-deleted": _user_deleted,
    "id-token": _id_token,
}


@pytest.mark.parametrize("make", list(INACTIVE.values()), ids=list(INACTIVE))
async def test_inactive_is_exactly_active_false(api, app, session_factory, make):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    token = await make(api, app, client, user)

    assert await introspect(api, client, token) == {"active": False}


async def test_public_client_may_not_introspect(api, session_factory):
    client = await make_client(session_factory, public=True)

    response = await api.post(
        INTROSPECT_URL, data={"token": "x", "client_id": client.client_id}
    )

    assert_oauth_error(response, 401, "invalid_client")


CLIENT_FAILURES = {
    "wrong-secret": {"auth": ("{cid}", "wrong")},
    "unknown-client": {"auth": ("nobody", "secret")},
    "no-credentials": {},
    "secret-post-wrong": {"data": {"client_id": "{cid}", "client_secret": "no"}},
}


@pytest.mark.parametrize(
    "case", list(CLIENT_FAILURES.values()), ids=list(CLIENT_FAILURES)
)
async def test_client_must_authenticate(api, session_factory, case):
    client = await make_client(session_factory)
    auth = None
    if "auth" in case:
        auth = tuple(part.format(cid=client.client_id) for part in case["auth"])
    extra = {k: v.format(cid=client.client_id) for k, v in case.get("data", {}).items()}

    response = await api.post(INTROSPECT_URL, data={"token": "x", **extra}, auth=auth)

    assert_oauth_error(response, 401, "invalid_client")


async def test_secret_post_works(api, session_factory):
    client = await make_client(session_factory)

    response = await api.post(INTROSPECT_URL, data={"token": "x", **client.form()})

    assert response.status_code == 200
    assert response.json() == {"active": False}


@pytest.mark.parametrize(
    "kwargs",
    [{"data": {}}, {"json": {"token": "x"}}, {"data": {"token": "x" * 5000}}],
    ids=["no-token", "json-body", "token-too-long"],
)
async def test_malformed_requests(api, session_factory, kwargs):
    client = await make_client(session_factory)

    response = await api.post(INTROSPECT_URL, auth=client.basic_auth, **kwargs)

    assert_oauth_error(response, 400, "invalid_request")
