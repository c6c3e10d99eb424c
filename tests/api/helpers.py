"""Small request helpers for the token endpoint tests."""

from typing import Any

import httpx2

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
