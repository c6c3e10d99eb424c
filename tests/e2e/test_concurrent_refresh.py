"""Twenty parallel refreshes with one token at a real server mint one child."""

import asyncio
from datetime import timedelta

import httpx2
import pytest

from tests.factories import DEFAULT_PASSWORD, make_client, make_user
from tests.live import free_socket, live_server, live_settings

PARALLEL = 20


async def _login(url: str, session_factory) -> tuple[tuple[str, str], str]:
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{url}/oauth2/token",
            data={
                "grant_type": "password",
                "username": user.username,
                "password": DEFAULT_PASSWORD,
            },
            auth=client.basic_auth,
        )
    assert response.status_code == 200, response.text
    return client.basic_auth, response.json()["refresh_token"]


async def _refresh_in_parallel(
    url: str, auth, refresh_token: str
) -> list[httpx2.Response]:
    # One client (and connection) per request, so they truly race at the server.
    async def one() -> httpx2.Response:
        async with httpx2.AsyncClient(timeout=30) as http:
            return await http.post(
                f"{url}/oauth2/token",
                data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                auth=auth,
            )

    return await asyncio.gather(*(one() for _ in range(PARALLEL)))


@pytest.mark.parametrize("window", [10, 0], ids=["retry-window", "no-window"])
async def test_parallel_refresh_mints_one_child(
    database_url, tmp_path, session_factory, clean_db, window
):
    sock = free_socket()
    settings = live_settings(
        database_url,
        tmp_path / "keys",
        sock,
        refresh_retry_window=timedelta(seconds=window),
    )
    async with live_server(settings, sock) as url:
        auth, refresh_token = await _login(url, session_factory)

        responses = await _refresh_in_parallel(url, auth, refresh_token)

        ok = [r for r in responses if r.status_code == 200]
        failed = [r for r in responses if r.status_code != 200]
        assert all(r.status_code in (200, 400) for r in responses), [
            r.text for r in responses
        ]
        if window:
            assert len(ok) == PARALLEL
            assert len({r.text for r in ok}) == 1  # the very same pair, byte for byte
            child = ok[0].json()["refresh_token"]
            async with httpx2.AsyncClient() as http:
                following = await http.post(
                    f"{url}/oauth2/token",
                    data={"grant_type": "refresh_token", "refresh_token": child},
                    auth=auth,
                )
            assert following.status_code == 200, following.text
        else:
            assert len(ok) == 1
            assert {r.json()["error"] for r in failed} == {"invalid_grant"}
