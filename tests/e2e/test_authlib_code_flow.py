"""An independent client (Authlib's AsyncOAuth2Client, PKCE S256) completes the
authorization code flow against a real server; a browser is played by httpx,
which posts the login form and follows the redirects to the app's callback."""

import asyncio

import httpx2
import jwt as pyjwt
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.callback_server import callback_server
from tests.factories import DEFAULT_PASSWORD, make_code_client, make_user
from tests.oauth_flow import hidden_fields


@pytest.mark.parametrize("public", [True, False], ids=["public", "confidential"])
async def test_authlib_code_flow_with_pkce(live, session_factory, public):
    user = await make_user(session_factory)
    async with callback_server() as rp, httpx2.AsyncClient() as http:
        redirect_uri = rp.url("/callback")
        client = await make_code_client(
            session_factory, public=public, redirect_uris=(redirect_uri,)
        )
        discovery = (await http.get(f"{live}/.well-known/openid-configuration")).json()
        assert discovery["code_challenge_methods_supported"] == ["S256"]

        async with AsyncOAuth2Client(
            client.client_id,
            client.secret,
            token_endpoint_auth_method="none" if public else "client_secret_basic",
            scope="openid profile",
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        ) as oauth:
            verifier = generate_token(48)
            nonce = generate_token(16)
            url, state = oauth.create_authorization_url(
                discovery["authorization_endpoint"],
                code_verifier=verifier,
                nonce=nonce,
            )

            # The browser: the login page, the form post, the redirects.
            page = await http.get(url)
            assert page.status_code == 200
            fields = hidden_fields(page.text)
            landed = await http.post(
                f"{live}/oauth2/login",
                data={
                    **fields,
                    "username": user.username,
                    "password": DEFAULT_PASSWORD,
                },
                follow_redirects=True,
            )
            assert landed.status_code == 200
            assert str(landed.url).startswith(redirect_uri)

            token = await oauth.fetch_token(
                discovery["token_endpoint"],
                authorization_response=str(landed.url),
                state=state,
                code_verifier=verifier,
            )
            refreshed = await oauth.refresh_token(discovery["token_endpoint"])

    assert token["token_type"] == "Bearer"
    assert refreshed["refresh_token"] != token["refresh_token"]
    jwks = pyjwt.PyJWKClient(discovery["jwks_uri"])
    key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token["id_token"])
    claims = pyjwt.decode(
        token["id_token"],
        key.key,
        algorithms=["RS256"],
        audience=client.client_id,
        issuer=live,
    )
    assert claims["nonce"] == nonce
    assert claims["sub"] == str(user.id)
