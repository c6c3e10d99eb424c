"""Small request helpers for the token endpoint and protected-resource tests."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx2
from joserfc.jwk import RSAKey

from authserver.api.state import app_state
from authserver.core.security import sign_jwt
from tests.conftest import TEST_ISSUER
from tests.factories import DEFAULT_PASSWORD, TestClient

TOKEN_URL = "/oauth2/token"


async def password_grant(
    api: httpx2.AsyncClient,
    client: TestClient,
    username: str,
    password: str = DEFAULT_PASSWORD,
    **extra: str,
) -> httpx2.Response:
    data = {"grant_type": "password", "username": username, "password": password}
    return await _post(api, client, {**data, **extra})


async def refresh_grant(
    api: httpx2.AsyncClient, client: TestClient, refresh_token: str, **extra: str
) -> httpx2.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await _post(api, client, {**data, **extra})


async def _post(
    api: httpx2.AsyncClient, client: TestClient, data: dict[str, str]
) -> httpx2.Response:
    if client.secret is None:
        return await api.post(TOKEN_URL, data={**data, "client_id": client.client_id})
    return await api.post(TOKEN_URL, data=data, auth=client.basic_auth)


def assert_oauth_error(response: httpx2.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def tokens(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


# --- Protected resources, revocation and introspection ---------------------

REVOKE_URL = "/oauth2/revoke"
INTROSPECT_URL = "/oauth2/introspect"
USERINFO_URL = "/oauth2/userinfo"
USERS_URL = "/api/v1/users"
ME_URL = "/api/v1/users/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def client_credentials_grant(
    api: httpx2.AsyncClient, client: TestClient, **extra: str
) -> httpx2.Response:
    return await _post(api, client, {"grant_type": "client_credentials", **extra})


async def user_tokens(
    api: httpx2.AsyncClient, client: TestClient, username: str, **extra: str
) -> dict[str, Any]:
    """The token response of a password grant that must succeed."""
    return tokens(await password_grant(api, client, username, **extra))


async def revoke(
    api: httpx2.AsyncClient, client: TestClient, token: str, **extra: str
) -> httpx2.Response:
    data = {"token": token, **extra}
    if client.secret is None:
        return await api.post(REVOKE_URL, data={**data, "client_id": client.client_id})
    return await api.post(REVOKE_URL, data=data, auth=client.basic_auth)


async def introspect(
    api: httpx2.AsyncClient, client: TestClient, token: str, **extra: str
) -> dict[str, Any]:
    """The introspection answer, which must be a 200."""
    response = await api.post(
        INTROSPECT_URL, data={"token": token, **extra}, auth=client.basic_auth
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def assert_bearer_error(
    response: httpx2.Response, status: int, error: str | None
) -> None:
    """An RFC 6750 §3 answer: the challenge names the error (none when absent)."""
    assert response.status_code == status, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="authserver"')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
        assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_claims(
    user_id: Any, client: TestClient, *, scope: str = "profile", **overrides: Any
) -> dict[str, Any]:
    """Claims of an access token as the server mints them, with overrides."""
    now = int(time.time())
    claims = {
        "iss": TEST_ISSUER,
        "sub": str(user_id),
        "aud": TEST_ISSUER,
        "exp": now + 600,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "client_id": client.client_id,
        "client_uuid": str(client.client.id),
        "scope": scope,
    }
    return {**claims, **overrides}


def sign_token(app: Any, claims: dict[str, Any], *, typ: str = "at+jwt") -> str:
    """Signed with the server's own current key: only the claims can be wrong."""
    return sign_jwt(app_state(app).keystore.view().signing_key, claims, typ=typ)


def forged_token(app: Any, claims: dict[str, Any]) -> str:
    """Signed by a stranger's key that claims the server's kid."""
    kid = app_state(app).keystore.view().signing_key.kid
    stranger = RSAKey.generate_key(2048, parameters={"kid": kid})
    return sign_jwt(stranger, claims, typ="at+jwt")


def unsigned_token(app: Any, claims: dict[str, Any]) -> str:
    kid = app_state(app).keystore.view().signing_key.kid
    header = {"alg": "none", "typ": "at+jwt", "kid": kid}
    encoded = [_b64(json.dumps(part).encode()) for part in (header, claims)]
    return ".".join(encoded) + "."


def hs256_with_public_key(app: Any, claims: dict[str, Any]) -> str:
    """The classic confusion attack: HMAC keyed with the published RSA key."""
    key = app_state(app).keystore.view().signing_key
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
    signing_input = ".".join(
        _b64(json.dumps(part).encode()) for part in (header, claims)
    )
    secret = key.as_pem(private=False)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a JWT, read without verification."""
    parts = [
        json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        for part in token.split(".")[:2]
    ]
    return parts[0], parts[1]
