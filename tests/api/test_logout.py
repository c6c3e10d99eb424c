"""RP-Initiated Logout 1.0 at /oauth2/logout: a valid id_token_hint ends the
session at once; anything else asks the user; redirects only to a registered
post_logout_redirect_uri."""

from datetime import UTC, datetime

import jwt as pyjwt
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from authserver.api.state import app_state
from authserver.core.security import sign_jwt
from tests.factories import (
    CALLBACK,
    DEFAULT_PASSWORD,
    LOGGED_OUT,
    make_code_client,
    make_user,
)
from tests.oauth_flow import (
    authorize_params,
    hidden_fields,
    new_pkce,
    query_of,
    sign_in,
)

LOGOUT = "/oauth2/logout"
SESSION_COOKIE = "authserver_session"


async def session_with_id_token(api, session_factory):
    client = await make_code_client(session_factory)
    user = await make_user(session_factory)
    pkce = new_pkce()
    params = authorize_params(client.client_id, CALLBACK, pkce)
    answer = await sign_in(api, params, user.username, DEFAULT_PASSWORD)
    tokens = await api.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(answer.headers["location"])["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": pkce.verifier,
            **client.form(),
        },
    )
    return client, user, tokens.json()["id_token"]


async def still_signed_in(api, client) -> bool:
    params = authorize_params(client.client_id, CALLBACK, new_pkce(), prompt="none")
    answer = await api.get("/oauth2/authorize", params=params)
    return "code" in query_of(answer.headers["location"])


async def test_hint_and_registered_uri_end_the_session(api, session_factory):
    client, _, id_token = await session_with_id_token(api, session_factory)
    answer = await api.get(
        LOGOUT,
        params={
            "id_token_hint": id_token,
            "post_logout_redirect_uri": LOGGED_OUT,
            "state": "s1",
        },
    )
    assert answer.status_code == 302
    assert answer.headers["location"] == f"{LOGGED_OUT}?state=s1"
    assert f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]
    assert not await still_signed_in(api, client)


async def test_expired_hint_is_accepted(api, app, session_factory):
    client, _, id_token = await session_with_id_token(api, session_factory)
    claims = pyjwt.decode(id_token, options={"verify_signature": False})
    claims.update(iat=claims["iat"] - 7200, exp=claims["iat"] - 3600)
    expired = sign_jwt(app_state(app).keystore.view().signing_key, claims, typ="JWT")
    answer = await api.post(LOGOUT, data={"id_token_hint": expired})
    assert answer.status_code == 200
    assert "You're signed out" in answer.text
    assert not await still_signed_in(api, client)


def foreign_token(claims_from: str) -> str:
    """The same claims, signed by a key that is not ours."""
    claims = pyjwt.decode(claims_from, options={"verify_signature": False})
    key = RSAKey.generate_key(2048, parameters={"kid": "not-ours"})
    return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": "not-ours"}, claims, key)


REFUSALS = {
    "foreign-signature": ("foreign", {}),
    "garbage-hint": ("garbage", {}),
    "hint-for-another-client": ("ours", {"client_id": "another-client"}),
    "unregistered-uri": ("ours", {"post_logout_redirect_uri": CALLBACK}),
    "uri-prefix-trick": ("ours", {"post_logout_redirect_uri": LOGGED_OUT + "/x"}),
    "uri-without-client": ("none", {"post_logout_redirect_uri": LOGGED_OUT}),
    "unknown-client": ("none", {"client_id": "nobody"}),
}


@pytest.mark.parametrize(("hint", "extra"), list(REFUSALS.values()), ids=list(REFUSALS))
async def test_logout_refusals_show_a_page(api, session_factory, hint, extra):
    client, _, id_token = await session_with_id_token(api, session_factory)
    params = dict(extra)
    if hint == "ours":
        params["id_token_hint"] = id_token
    elif hint == "foreign":
        params["id_token_hint"] = foreign_token(id_token)
    elif hint == "garbage":
        params["id_token_hint"] = "a.b.c"
    answer = await api.get(LOGOUT, params=params)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert 'role="alert"' in answer.text
    assert await still_signed_in(api, client)


async def test_without_hint_the_user_confirms(api, session_factory):
    client, _, _ = await session_with_id_token(api, session_factory)
    params = {
        "client_id": client.client_id,
        "post_logout_redirect_uri": LOGGED_OUT,
        "state": "s2",
    }
    page = await api.get(LOGOUT, params=params)
    assert page.status_code == 200
    assert "Sign out?" in page.text
    assert await still_signed_in(api, client)
    fields = hidden_fields(page.text)

    forged = await api.post(
        LOGOUT, data={**fields, "csrf_token": "0" * 64, "confirm": "yes"}
    )
    assert forged.status_code == 200 and "Sign out?" in forged.text
    assert await still_signed_in(api, client)

    stay = await api.post(LOGOUT, data={**fields, "confirm": "no"})
    assert "still signed in" in stay.text
    assert await still_signed_in(api, client)

    confirmed = await api.post(LOGOUT, data={**fields, "confirm": "yes"})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == f"{LOGGED_OUT}?state=s2"
    assert not await still_signed_in(api, client)


async def test_hint_of_another_user_asks_first(api, app, session_factory):
    client, _, _ = await session_with_id_token(api, session_factory)
    stranger = await make_user(session_factory)
    hint = app_state(app).tokens.mint_id(
        subject=str(stranger.id),
        client_id=client.client_id,
        auth_time=datetime.now(UTC),
        now=datetime.now(UTC),
    )
    page = await api.get(LOGOUT, params={"id_token_hint": hint.token})
    assert page.status_code == 200 and "Sign out?" in page.text
    assert await still_signed_in(api, client)


async def test_logout_without_a_session_just_says_so(api, session_factory):
    answer = await api.get(LOGOUT)
    assert answer.status_code == 200
    assert "You're signed out" in answer.text
