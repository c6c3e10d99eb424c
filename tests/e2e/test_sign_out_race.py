"""A code exchanged while its browser signs out opens no family that outlives
the logout.

Each trial signs a browser in, gets a second code without a page
(prompt=none), then at the same moment exchanges that code and logs out.
Once both have answered, the exchange either was refused or its tokens are
dead. On PostgreSQL (READ COMMITTED) a logout whose revoking UPDATE started
before the exchange committed cannot see the family it inserts; the exchange
therefore holds the session's row, and a logout waits for it.
"""

import asyncio

import httpx2

from tests.api.helpers import introspect, refresh_grant
from tests.factories import (
    CALLBACK,
    DEFAULT_PASSWORD,
    make_client,
    make_code_client,
    make_user,
)
from tests.live import free_socket, live_server, live_settings
from tests.oauth_flow import authorize_params, new_pkce, query_of, sign_in
from tests.races import jittered, survivors

TRIALS = 30
AT_ONCE = 6  # trials in flight together: load widens the race window
JITTER = 0.004  # each side starts after a random pause of up to this (seconds)
TIME_LIMIT = 180  # seconds, for every trial together


async def test_no_exchange_outlives_a_concurrent_logout(
    database_url, tmp_path, session_factory, clean_db
):
    sock = free_socket()
    # Every trial signs the one user in at the same time: no lockout.
    settings = live_settings(database_url, tmp_path / "keys", sock, lockout_threshold=0)
    async with live_server(settings, sock) as url:
        app = await make_code_client(session_factory)
        resource_server = await make_client(
            session_factory, grant_types=("client_credentials",)
        )
        user = await make_user(session_factory)

        async def exchange(
            http: httpx2.AsyncClient, code: str, verifier: str
        ) -> httpx2.Response:
            form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
                "client_id": app.client_id,
            }
            return await http.post("/oauth2/token", data=form)

        async def trial() -> bool:
            """One race; True when the exchange's family outlived the logout."""
            async with httpx2.AsyncClient(base_url=url, timeout=30) as browser:
                pkce = new_pkce()
                params = authorize_params(app.client_id, CALLBACK, pkce)
                landed = await sign_in(browser, params, user.username, DEFAULT_PASSWORD)
                first_code = query_of(landed.headers["location"])["code"]
                first = await exchange(browser, first_code, pkce.verifier)
                assert first.status_code == 200, first.text
                hint = first.json()["id_token"]
                later = new_pkce()
                silent = authorize_params(app.client_id, CALLBACK, later, prompt="none")
                answer = await browser.get("/oauth2/authorize", params=silent)
                code = query_of(answer.headers["location"])["code"]

                exchanged, logout = await asyncio.gather(
                    jittered(exchange(browser, code, later.verifier), JITTER),
                    jittered(
                        browser.get("/oauth2/logout", params={"id_token_hint": hint}),
                        JITTER,
                    ),
                )
                assert logout.status_code == 200, logout.text
                assert exchanged.status_code in (200, 400), exchanged.text
                if exchanged.status_code == 400:
                    assert exchanged.json()["error"] == "invalid_grant"
                    return False

                # The logout has answered: nothing of the family may live.
                body = exchanged.json()
                again = await refresh_grant(browser, app, body["refresh_token"])
                assert again.status_code in (200, 400), again.text
                info = await introspect(browser, resource_server, body["access_token"])
                return again.status_code == 200 or info["active"]

        alive = await survivors(
            trial, trials=TRIALS, at_once=AT_ONCE, time_limit=TIME_LIMIT
        )

    assert alive == 0, f"{alive} of {TRIALS} exchanges outlived their logout"
