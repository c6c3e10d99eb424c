"""One code, redeemed by several requests at once against a real server: the
conditional UPDATE lets exactly one through, and the others count as a replay
that revokes what the winner was issued (RFC 6749 §4.1.2)."""

import asyncio

import httpx2

from tests.factories import CALLBACK, DEFAULT_PASSWORD, make_code_client, make_user
from tests.oauth_flow import authorize_params, new_pkce, query_of, sign_in

PARALLEL = 6


async def test_parallel_redemptions_have_one_winner(live, session_factory):
    client = await make_code_client(session_factory, public=False)
    user = await make_user(session_factory)
    pkce = new_pkce()
    async with httpx2.AsyncClient(base_url=live) as http:
        params = authorize_params(client.client_id, CALLBACK, pkce)
        answer = await sign_in(http, params, user.username, DEFAULT_PASSWORD)
        code = query_of(answer.headers["location"])["code"]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": pkce.verifier,
        }
        answers = await asyncio.gather(
            *(
                http.post("/oauth2/token", data=form, auth=client.basic_auth)
                for _ in range(PARALLEL)
            )
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [400] * (PARALLEL - 1)
        assert {a.json()["error"] for a in answers if a.status_code == 400} == {
            "invalid_grant"
        }
        winner = next(a.json() for a in answers if a.status_code == 200)
        refresh = await http.post(
            "/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": winner["refresh_token"],
            },
            auth=client.basic_auth,
        )
        assert refresh.json()["error"] == "invalid_grant"
