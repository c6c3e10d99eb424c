"""Client credentials grant (RFC 6749 §4.4) through the in-process app."""

import pytest

from authserver.api.state import app_state
from authserver.services.clients import ClientCache
from tests.api.helpers import (
    ME_URL,
    TOKEN_URL,
    assert_oauth_error,
    bearer,
    client_credentials_grant,
    introspect,
    tokens,
    unverified,
)
from tests.factories import make_client

CC = ("client_credentials",)


async def test_issues_an_access_token_for_the_client(api, session_factory):
    client = await make_client(
        session_factory, grant_types=CC, scopes=("reports", "profile")
    )

    body = tokens(await client_credentials_grant(api, client, scope="reports"))

    assert body["token_type"] == "Bearer"
    assert body["scope"] == "reports"
    assert body["expires_in"] == 900
    assert "refresh_token" not in body and "id_token" not in body
    header, claims = unverified(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == client.client_id
    assert claims["client_id"] == client.client_id
    assert claims["aud"] == "http://localhost"


async def test_default_scope_leaves_out_user_only_scopes(api, session_factory):
    client = await make_client(
        session_factory, grant_types=CC, scopes=("openid", "reports", "admin")
    )

    body = tokens(await client_credentials_grant(api, client))

    assert body["scope"] == "reports"


async def test_client_audience_and_secret_post(api, session_factory):
    client = await make_client(
        session_factory, grant_types=CC, scopes=("reports",), audience="urn:api"
    )

    response = await api.post(
        TOKEN_URL, data={"grant_type": "client_credentials", **client.form()}
    )

    assert unverified(tokens(response)["access_token"])[1]["aud"] == "urn:api"


async def test_token_introspects_without_username(api, session_factory):
    client = await make_client(session_factory, grant_types=CC, scopes=("reports",))
    access = tokens(await client_credentials_grant(api, client))["access_token"]

    info = await introspect(api, client, access)

    assert info["active"] is True
    assert info["sub"] == info["client_id"] == client.client_id
    assert "username" not in info


async def test_client_token_cannot_act_as_a_user(api, session_factory):
    client = await make_client(session_factory, grant_types=CC, scopes=("profile",))
    access = tokens(await client_credentials_grant(api, client))["access_token"]

    response = await api.get(ME_URL, headers=bearer(access))

    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


REJECTIONS = {
    "grant-not-allowed": ({"grant_types": ("password",)}, {}, "unauthorized_client"),
    "scope-not-allowed": ({}, {"scope": "billing"}, "invalid_scope"),
    "openid-asked": ({"scopes": ("openid", "reports")}, {"scope": "openid"}, "invalid_scope"),
    "admin-asked": ({"scopes": ("admin",)}, {"scope": "admin"}, "invalid_scope"),
    "malformed-scope": ({}, {"scope": 'x"y'}, "invalid_scope"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("client_options", "form", "error"),
    list(REJECTIONS.values()),
    ids=list(REJECTIONS),
)
async def test_rejects(api, session_factory, client_options, form, error):
    options = {"grant_types": CC, "scopes": ("reports",), **client_options}
    client = await make_client(session_factory, **options)

    response = await client_credentials_grant(api, client, **form)

    assert_oauth_error(response, 400, error)


async def test_public_client_is_refused(api, session_factory):
    client = await make_client(session_factory, public=True, grant_types=("password",))
    async with session_factory() as session:
        # A public client allowed the grant (registered before the CLI checked).
        stored = await session.get(type(client.client), client.client.id)
        stored.grant_types = ["client_credentials"]
        await session.commit()

    response = await api.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": client.client_id},
    )

    assert_oauth_error(response, 400, "unauthorized_client")


async def test_wrong_secret_is_invalid_client(api, session_factory):
    client = await make_client(session_factory, grant_types=CC)

    response = await api.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, "wrong"),
    )

    assert_oauth_error(response, 401, "invalid_client")


async def test_a_cached_client_needs_no_database_session(api, app, session_factory):
    client = await make_client(session_factory, grant_types=CC, scopes=("reports",))
    opened = []

    def counting_factory():
        opened.append(1)
        return session_factory()

    # Not monkeypatch: it deletes, rather than restores, a Starlette State entry.
    saved = app_state(app).client_cache, app_state(app).session_factory
    app_state(app).client_cache = ClientCache(ttl=60)
    app_state(app).session_factory = counting_factory
    try:
        tokens(await client_credentials_grant(api, client))  # reads the client
        tokens(await client_credentials_grant(api, client))  # from the cache
    finally:
        app_state(app).client_cache, app_state(app).session_factory = saved

    assert len(opened) == 1
