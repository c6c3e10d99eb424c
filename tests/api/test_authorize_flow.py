"""The authorization code flow through the hosted pages, in process."""

from datetime import timedelta

import jwt as pyjwt
import pytest

from tests.factories import (
    CALLBACK,
    DEFAULT_PASSWORD,
    make_code_client,
    make_user,
)
from tests.oauth_flow import (
    authorize_params,
    code_form,
    hidden_fields,
    new_pkce,
    query_of,
    sign_in,
    submit_login,
)

TOKEN = "/oauth2/token"
ISSUER = "http://localhost"


async def test_sign_in_then_code_then_tokens_then_refresh(api, session_factory):
    client = await make_code_client(session_factory)
    user = await make_user(session_factory)
    pkce = new_pkce()
    params = authorize_params(client.client_id, CALLBACK, pkce)

    page = await api.get("/oauth2/authorize", params=params)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert '<html lang="en">' in page.text
    assert '<label for="username">' in page.text
    assert "Test app" in page.text

    answer = await submit_login(api, page, user.username, DEFAULT_PASSWORD)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(CALLBACK + "?")
    query = query_of(location)
    assert query["state"] == params["state"]
    assert query["iss"] == ISSUER
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")

    tokens = await api.post(TOKEN, data=code_form(client, query["code"], pkce))
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert tokens.headers["cache-control"] == "no-store"
    id_claims = pyjwt.decode(body["id_token"], options={"verify_signature": False})
    assert id_claims["nonce"] == params["nonce"]
    assert id_claims["aud"] == client.client_id
    assert id_claims["sub"] == str(user.id)
    assert "sid" in id_claims and "auth_time" in id_claims
    assert body["scope"] == "openid profile"

    refreshed = await api.post(
        TOKEN,
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            **client.form(),
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != body["refresh_token"]
