"""UserInfo (OpenID Connect Core §5.3) through the in-process app."""

import pytest

from tests.api.helpers import (
    USERINFO_URL,
    assert_bearer_error,
    bearer,
    client_credentials_grant,
    tokens,
    user_tokens,
)
from tests.factories import make_client, make_user

CLAIMS_BY_SCOPE = {
    "openid": {"sub"},
    "openid-profile": {"sub", "preferred_username"},
    "openid-email": {"sub", "email", "email_verified"},
    "openid-profile-email": {"sub", "preferred_username", "email", "email_verified"},
}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("scope", "claims"), list(CLAIMS_BY_SCOPE.items()), ids=list(CLAIMS_BY_SCOPE)
)
async def test_claims_follow_the_granted_scopes(
    api, session_factory, method, scope, claims
):
    client = await make_client(session_factory)
    user = await make_user(session_factory, username="Dana", email="Dana@Example.org")
    access = (await user_tokens(api, client, "dana", scope=scope.replace("-", " ")))[
        "access_token"
    ]

    response = await api.request(method, USERINFO_URL, headers=bearer(access))

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == claims
    assert body["sub"] == str(user.id)
    if "email" in claims:
        assert body["email"] == "dana@example.org"
        assert body["email_verified"] is False
    if "preferred_username" in claims:
        assert body["preferred_username"] == "Dana"


async def test_user_without_email_gets_no_email_claims(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    access = (await user_tokens(api, client, user.username, scope="openid email"))[
        "access_token"
    ]

    response = await api.get(USERINFO_URL, headers=bearer(access))

    assert response.json() == {"sub": str(user.id)}


async def test_token_for_another_audience_still_works(api, session_factory):
    client = await make_client(session_factory, audience="urn:orders")
    user = await make_user(session_factory)
    access = (await user_tokens(api, client, user.username, scope="openid"))[
        "access_token"
    ]

    response = await api.get(USERINFO_URL, headers=bearer(access))

    assert response.status_code == 200


async def test_without_openid_scope_is_403(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    access = (await user_tokens(api, client, user.username, scope="profile"))[
        "access_token"
    ]

    response = await api.get(USERINFO_URL, headers=bearer(access))

    assert_bearer_error(response, 403, "insufficient_scope")
    assert 'scope="openid"' in response.headers["www-authenticate"]


async def test_client_credentials_token_is_403(api, session_factory):
    client = await make_client(
        session_factory, grant_types=("client_credentials",), scopes=("profile",)
    )
    access = tokens(await client_credentials_grant(api, client))["access_token"]

    response = await api.get(USERINFO_URL, headers=bearer(access))

    assert_bearer_error(response, 403, "insufficient_scope")


async def test_without_token_is_401(api):
    response = await api.post(USERINFO_URL)

    assert_bearer_error(response, 401, None)
