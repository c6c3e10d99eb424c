"""A family revoked while its newest token is being rotated stays dead (issue 12).

Each trial logs in, rotates once, then at the same moment rotates the newest
token and revokes the family (through /oauth2/revoke, or by replaying the
rotated token: reuse detection). Once both have answered, the family's newest
token, whichever request minted it, must neither rotate nor introspect active.
On PostgreSQL (READ COMMITTED) a revoking UPDATE that started before the
rotation committed cannot see the child it inserts; the rotating statement must
therefore see the revocation itself.
"""

import asyncio
import random
from collections.abc import Awaitable
from datetime import timedelta

import httpx2
import pytest

from tests.factories import DEFAULT_PASSWORD, make_client, make_user
from tests.live import free_socket, live_server, live_settings
from tests.races import jittered, survivors

# Reuse detection reads before it revokes, so its window is rarer to hit.
TRIALS = {"revoke": 100, "reuse": 200}
AT_ONCE = 6  # trials in flight together: load widens the race window
# Each side starts after a random pause of up to (seconds): the race is lost
# when the rotation holds the row while the revoking UPDATE takes its snapshot,
# and reuse detection reads a few times before it revokes, /oauth2/revoke once.
JITTER = 0.004
LEAD = {"revoke": 2 * JITTER, "reuse": 6 * JITTER}
TIME_LIMIT = 240  # seconds, for every trial of one kind together


@pytest.mark.parametrize("kind", ["revoke", "reuse"])
async def test_no_family_outlives_its_revocation(
    database_url, tmp_path, session_factory, clean_db, kind
):
    sock = free_socket()
    # No retry window: a replayed token is always reuse, never a retry.
    settings = live_settings(
        database_url,
        tmp_path / "keys",
        sock,
        refresh_retry_window=timedelta(0),
        # Every trial logs the one user in at the same time: no lockout, which
        # would refuse logins in flight beyond its threshold.
        lockout_threshold=0,
    )
    async with live_server(settings, sock) as url:
        client = await make_client(session_factory)
        user = await make_user(session_factory)
        limits = httpx2.Limits(max_connections=4 * AT_ONCE)
        async with httpx2.AsyncClient(
            base_url=url, auth=client.basic_auth, timeout=30, limits=limits
        ) as http:

            async def refresh(token: str) -> httpx2.Response:
                form = {"grant_type": "refresh_token", "refresh_token": token}
                return await http.post("/oauth2/token", data=form)

            async def revoke_family(old: str, newest: str) -> httpx2.Response:
                if kind == "revoke":
                    form = {"token": newest, "token_type_hint": "refresh_token"}
                    return await http.post("/oauth2/revoke", data=form)
                return await refresh(old)

            async def trial() -> bool:
                """One race; True when the family outlived its revocation."""
                login = {
                    "grant_type": "password",
                    "username": user.username,
                    "password": DEFAULT_PASSWORD,
                }
                first = await http.post("/oauth2/token", data=login)
                assert first.status_code == 200, first.text
                old = first.json()["refresh_token"]
                second = await refresh(old)
                assert second.status_code == 200, second.text
                newest = second.json()["refresh_token"]

                rotated, revoked = await asyncio.gather(
                    jittered(refresh(newest), LEAD[kind]),
                    jittered(revoke_family(old, newest), JITTER),
                )
                expected = 200 if kind == "revoke" else 400
                assert revoked.status_code == expected, revoked.text
                assert rotated.status_code in (200, 400), rotated.text
                if rotated.status_code == 200:
                    newest = rotated.json()["refresh_token"]

                # The revocation has answered: nothing of the family may live.
                again = await refresh(newest)
                assert again.status_code in (200, 400), again.text
                info = await http.post(
                    "/oauth2/introspect",
                    data={"token": newest, "token_type_hint": "refresh_token"},
                )
                assert info.status_code == 200, info.text
                return again.status_code == 200 or info.json()["active"]

            alive = await survivors(
                trial, trials=TRIALS[kind], at_once=AT_ONCE, time_limit=TIME_LIMIT
            )

    assert alive == 0, f"{alive} of {TRIALS[kind]} families outlived their revocation"
