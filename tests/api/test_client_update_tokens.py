"""What `client update` means for what the client was given before: a scope or
grant it lost is not granted again, not by a refresh, a code issued before the
change or a sign-in in progress, and its access tokens lose the scope here."""

from typing import Any

import jwt as pyjwt
import pytest

from authserver.db.unit_of_work import UnitOfWork
from authserver.schemas.client import ClientChanges, UriChanges
from authserver.services.clients import update_client
from tests.api.helpers import (
    ME_URL,
    USERINFO_URL,
    assert_bearer_error,
    assert_oauth_error,
    bearer,
    introspect,
    password_grant,
    refresh_grant,
    tokens,
    user_tokens,
)
from tests.factories import (
    CALLBACK,
    DEFAULT_PASSWORD,
    LOGGED_OUT,
    make_client,
    make_code_client,
    make_user,
)
from tests.oauth_flow import (
    authorize_params,
    code_form,
    issued_code,
    new_pkce,
    query_of,
    sign_in,
    submit_login,
)

TOKEN = "/oauth2/token"
OTHER_CALLBACK = "https://app.example.com/other"
ALL_SCOPES = ("openid", "profile", "email")
USER_GRANTS = ("authorization_code", "password", "refresh_token")


async def change(session_factory, client, **fields: Any) -> None:
    """`authctl client update` as the service does it, in its own transaction."""
    async with UnitOfWork(session_factory) as uow:
        _, changed = await update_client(client.client_id, ClientChanges(**fields), uow)
    assert changed, fields


def scope_claim(token: str) -> str:
    claims = pyjwt.decode(token, options={"verify_signature": False})
    return str(claims["scope"])


async def signed_in_user(api, session_factory, client):
    user = await make_user(session_factory, email="dana@example.com")
    first = await user_tokens(api, client, user.username, scope=" ".join(ALL_SCOPES))
    return user, first


# --- refresh tokens ---------------------------------------------------------------


async def test_a_refresh_drops_removed_scopes_for_good(api, session_factory):
    client = await make_client(session_factory, scopes=ALL_SCOPES)
    _, first = await signed_in_user(api, session_factory, client)
    await change(session_factory, client, scopes=["openid", "profile"])

    asked = await refresh_grant(api, client, first["refresh_token"], scope="email")
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))
    await change(session_factory, client, scopes=list(ALL_SCOPES))
    third = tokens(await refresh_grant(api, client, second["refresh_token"]))

    # Asking for it is an error; carrying it gets it dropped.
    assert_oauth_error(asked, 400, "invalid_scope")
    assert second["scope"] == "openid profile"
    assert scope_claim(second["refresh_token"]) == "openid profile"
    # The scope given back to the client is not given back to old logins.
    assert third["scope"] == "openid profile"
    userinfo = await api.get(USERINFO_URL, headers=bearer(third["access_token"]))
    assert "email" not in userinfo.json()


async def test_a_removed_refresh_grant_refuses_refreshes(api, session_factory):
    client = await make_client(session_factory, scopes=ALL_SCOPES)
    _, first = await signed_in_user(api, session_factory, client)
    await change(session_factory, client, grant_types=["password"])

    refused = await refresh_grant(api, client, first["refresh_token"])
    inspected = await introspect(api, client, first["refresh_token"])
    await change(session_factory, client, grant_types=["password", "refresh_token"])
    restored = await refresh_grant(api, client, first["refresh_token"])

    assert_oauth_error(refused, 400, "unauthorized_client")
    assert inspected == {"active": False}
    # Not revoked: the grant given back, the token (within its lifetime) works.
    assert tokens(restored)["scope"] == " ".join(ALL_SCOPES)


async def test_a_removed_login_grant_keeps_the_logins_it_made(api, session_factory):
    client = await make_code_client(
        session_factory, public=False, grant_types=USER_GRANTS, scopes=ALL_SCOPES
    )
    user, first = await signed_in_user(api, session_factory, client)
    await change(
        session_factory, client, grant_types=["authorization_code", "refresh_token"]
    )

    login = await password_grant(api, client, user.username)
    refreshed = await refresh_grant(api, client, first["refresh_token"])

    assert_oauth_error(login, 400, "unauthorized_client")
    assert tokens(refreshed)["scope"] == " ".join(ALL_SCOPES)


# --- access tokens -------------------------------------------------------------------


async def test_access_tokens_lose_removed_scopes_at_this_server(api, session_factory):
    client = await make_client(session_factory, scopes=ALL_SCOPES)
    user, first = await signed_in_user(api, session_factory, client)
    access = first["access_token"]
    before = (await api.get(USERINFO_URL, headers=bearer(access))).json()
    await change(session_factory, client, scopes=["openid"])

    after = (await api.get(USERINFO_URL, headers=bearer(access))).json()
    me = await api.get(ME_URL, headers=bearer(access))
    inspected = await introspect(api, client, access)

    assert before["email"] == "dana@example.com" and "preferred_username" in before
    assert after == {"sub": str(user.id)}
    assert_bearer_error(me, 403, "insufficient_scope")
    assert inspected["active"] is True and inspected["scope"] == "openid"
    # The token itself still says what it said: resource servers that verify
    # it offline honour that until it expires (README).
    assert scope_claim(access) == " ".join(ALL_SCOPES)


# --- the code flow -------------------------------------------------------------------


async def test_a_code_issued_before_gets_only_the_scopes_left(api, session_factory):
    client = await make_code_client(session_factory)
    code, pkce, _ = await issued_code(api, session_factory, client)
    await change(session_factory, client, scopes=["profile", "email"])

    redeemed = tokens(await api.post(TOKEN, data=code_form(client, code, pkce)))

    assert redeemed["scope"] == "profile"
    assert "id_token" not in redeemed  # openid is gone
    assert scope_claim(redeemed["refresh_token"]) == "profile"


async def test_a_code_sent_to_a_removed_redirect_uri_is_refused(api, session_factory):
    client = await make_code_client(
        session_factory, redirect_uris=(CALLBACK, OTHER_CALLBACK)
    )
    code, pkce, _ = await issued_code(api, session_factory, client)
    await change(session_factory, client, redirect_uris=UriChanges(remove=[CALLBACK]))

    answer = await api.post(TOKEN, data=code_form(client, code, pkce))

    assert_oauth_error(answer, 400, "invalid_grant")


PENDING_CHANGES = {
    "code-grant-removed": {"grant_types": ["password", "refresh_token"]},
    "redirect-uri-removed": {"redirect_uris": UriChanges(replace=[OTHER_CALLBACK])},
}


async def pending_sign_in(api, session_factory, client):
    """The login page of an authorization request, before the user signs in."""
    user = await make_user(session_factory)
    pkce = new_pkce()
    params = authorize_params(client.client_id, CALLBACK, pkce)
    page = await api.get("/oauth2/authorize", params=params)
    assert page.status_code == 200, page.text
    return user, page, pkce


@pytest.mark.parametrize(
    "fields", list(PENDING_CHANGES.values()), ids=list(PENDING_CHANGES)
)
async def test_a_sign_in_in_progress_ends_when_its_grant_or_uri_goes(
    api, session_factory, fields
):
    client = await make_code_client(session_factory)
    user, page, _ = await pending_sign_in(api, session_factory, client)
    await change(session_factory, client, **fields)

    answer = await submit_login(api, page, user.username, DEFAULT_PASSWORD)

    # A page, never a redirect to a URI the client may have lost.
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "expired" in answer.text


async def test_a_sign_in_in_progress_gets_only_the_scopes_left(api, session_factory):
    client = await make_code_client(session_factory)
    user, page, pkce = await pending_sign_in(api, session_factory, client)
    await change(session_factory, client, scopes=["profile"])

    answer = await submit_login(api, page, user.username, DEFAULT_PASSWORD)
    assert answer.status_code == 303, answer.text
    code = query_of(answer.headers["location"])["code"]
    redeemed = tokens(await api.post(TOKEN, data=code_form(client, code, pkce)))

    assert redeemed["scope"] == "profile"
    assert "id_token" not in redeemed


async def test_a_removed_post_logout_uri_is_refused_by_the_next_logout(
    api, session_factory
):
    client = await make_code_client(session_factory)
    params = {"client_id": client.client_id, "post_logout_redirect_uri": LOGGED_OUT}
    before = await api.get("/oauth2/logout", params=params)
    await change(
        session_factory,
        client,
        post_logout_redirect_uris=UriChanges(replace=[OTHER_CALLBACK]),
    )

    after = await api.get("/oauth2/logout", params=params)

    # No one signed in: nothing to end, straight back to the client.
    assert before.status_code == 302
    assert before.headers["location"].startswith(LOGGED_OUT)
    assert after.status_code == 400
    assert "location" not in after.headers
    assert "post_logout_redirect_uri is not registered" in after.text


async def test_a_client_made_third_party_asks_for_consent_next_time(
    api, session_factory
):
    client = await make_code_client(session_factory)
    user = await make_user(session_factory)
    params = authorize_params(client.client_id, CALLBACK, new_pkce(), prompt="none")
    first = await sign_in(
        api,
        authorize_params(client.client_id, CALLBACK, new_pkce()),
        user.username,
        DEFAULT_PASSWORD,
    )
    await change(session_factory, client, is_third_party=True)

    asked = await api.get("/oauth2/authorize", params=params)
    await change(session_factory, client, is_third_party=False)
    not_asked = await api.get("/oauth2/authorize", params=params)

    assert first.status_code == 303  # signed in, no consent asked
    assert query_of(asked.headers["location"])["error"] == "consent_required"
    assert "code" in query_of(not_asked.headers["location"])
