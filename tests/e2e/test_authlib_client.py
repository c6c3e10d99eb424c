"""A real OAuth client (Authlib) against a real server; PyJWT verifies via JWKS."""

import asyncio

import httpx2
import jwt as pyjwt
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.factories import DEFAULT_PASSWORD, make_client, make_user


async def test_password_then_refresh_verified_by_pyjwt(live, session_factory):
    client = await make_client(session_factory, scopes=("openid", "profile"))
    user = await make_user(session_factory)
    async with httpx2.AsyncClient() as http:
        discovery = (await http.get(f"{live}/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == live

    async with AsyncOAuth2Client(
        client.client_id, client.secret, scope="openid profile"
    ) as oauth:
        first = await oauth.fetch_token(
            discovery["token_endpoint"],
            grant_type="password",
            username=user.username,
            password=DEFAULT_PASSWORD,
        )
        second = await oauth.refresh_token(discovery["token_endpoint"])

    assert second["refresh_token"] != first["refresh_token"]
    jwks_client = pyjwt.PyJWKClient(discovery["jwks_uri"])
    for token in (first["access_token"], second["access_token"]):
        signing_key = await asyncio.to_thread(
            jwks_client.get_signing_key_from_jwt, token
        )
        claims = pyjwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256"],
            audience=live,
            issuer=live,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
        header = pyjwt.get_unverified_header(token)
        assert header["typ"] == "at+jwt"
        assert header["kid"] == signing_key.key_id
        assert claims["sub"] == str(user.id)
        assert claims["client_id"] == client.client_id
    # PyJWT's client is blocking: keep it off the loop the server runs on.
    id_key = await asyncio.to_thread(
        jwks_client.get_signing_key_from_jwt, second["id_token"]
    )
    id_claims = pyjwt.decode(
        second["id_token"],
        id_key.key,
        algorithms=["RS256"],
        audience=client.client_id,
        issuer=live,
    )
    assert id_claims["sub"] == str(user.id)
