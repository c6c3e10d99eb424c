"""Revocation against a real server: families die whole, access tokens at once."""

import asyncio

import httpx2

from tests.factories import DEFAULT_PASSWORD, make_client, make_user


async def test_revocation_end_to_end(live, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    async with httpx2.AsyncClient(base_url=live, auth=client.basic_auth) as http:
        discovery = (await http.get("/.well-known/openid-configuration")).json()
        token_url = discovery["token_endpoint"]

        async def refresh(token: str) -> httpx2.Response:
            form = {"grant_type": "refresh_token", "refresh_token": token}
            return await http.post(token_url, data=form)

        async def introspect(token: str) -> dict:
            answer = await http.post(
                discovery["introspection_endpoint"], data={"token": token}
            )
            assert answer.status_code == 200, answer.text
            return answer.json()

        login = {
            "grant_type": "password",
            "username": user.username,
            "password": DEFAULT_PASSWORD,
        }
        first = (await http.post(token_url, data=login)).json()
        second = (await refresh(first["refresh_token"])).json()
        third = (await refresh(second["refresh_token"])).json()
        family = [t["refresh_token"] for t in (first, second, third)]
        assert (await introspect(family[2]))["active"] is True

        # Revoking any member (here the middle one) ends the whole family.
        revoked = await http.post(
            discovery["revocation_endpoint"],
            data={"token": family[1], "token_type_hint": "refresh_token"},
        )
        assert revoked.status_code == 200
        for token in family:
            answer = await refresh(token)
            assert answer.status_code == 400
            assert answer.json()["error"] == "invalid_grant"
            assert await introspect(token) == {"active": False}

        access = (await http.post(token_url, data=login)).json()["access_token"]
        me = f"{live}/api/v1/users/me"
        headers = {"Authorization": f"Bearer {access}"}
        async with httpx2.AsyncClient() as resource_client:
            assert (await resource_client.get(me, headers=headers)).status_code == 200
            assert (await introspect(access))["active"] is True

            revoked = await http.post(
                discovery["revocation_endpoint"],
                data={"token": access, "token_type_hint": "access_token"},
            )
            assert revoked.status_code == 200

            assert await introspect(access) == {"active": False}
            refused = await resource_client.get(me, headers=headers)
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_parallel_revocations_all_succeed(live, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    login = {
        "grant_type": "password",
        "username": user.username,
        "password": DEFAULT_PASSWORD,
    }
    async with httpx2.AsyncClient(base_url=live, auth=client.basic_auth) as http:
        first = (await http.post("/oauth2/token", data=login)).json()
        refreshed = await http.post(
            "/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first["refresh_token"],
            },
        )
        family = [first["refresh_token"], refreshed.json()["refresh_token"]]
        tokens = family * 4 + [first["access_token"]] * 4

        answers = await asyncio.gather(
            *(http.post("/oauth2/revoke", data={"token": t}) for t in tokens)
        )

        assert [a.status_code for a in answers] == [200] * len(tokens)
        for token in [*family, first["access_token"]]:
            answer = await http.post("/oauth2/introspect", data={"token": token})
            assert answer.json() == {"active": False}
