"""Dead tokens stay dead (issue 12): what a token is checked against was fixed
when it was issued, so re-enabling a user or re-creating a client under the same
client_id brings none of the old tokens back."""

import httpx2

from authserver.crud.client import ClientRepository
from authserver.services.clients import resolve_client
from tests.factories import DEFAULT_PASSWORD, make_client, make_user, user_service

ME = "/api/v1/users/me"
BOTH_GRANTS = ("password", "refresh_token", "client_credentials")


async def _login(http: httpx2.AsyncClient, client, username: str) -> dict:
    form = {
        "grant_type": "password",
        "username": username,
        "password": DEFAULT_PASSWORD,
    }
    response = await http.post("/oauth2/token", data=form, auth=client.basic_auth)
    assert response.status_code == 200, response.text
    return response.json()


async def _introspect(http: httpx2.AsyncClient, resource_server, token: str) -> dict:
    response = await http.post(
        "/oauth2/introspect", data={"token": token}, auth=resource_server.basic_auth
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _me(http: httpx2.AsyncClient, token: str) -> int:
    response = await http.get(ME, headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_a_token_from_before_a_disable_stays_dead_after_enable(
    live, session_factory
):
    client = await make_client(session_factory)
    resource_server = await make_client(session_factory, grant_types=BOTH_GRANTS)
    user = await make_user(session_factory)
    async with httpx2.AsyncClient(base_url=live) as http:
        old = await _login(http, client, user.username)
        assert await _me(http, old["access_token"]) == 200

        for active in (False, True):
            async with session_factory() as session:
                service = user_service(session)
                await service.set_active(await service.resolve(user.username), active)
                await session.commit()

        assert await _me(http, old["access_token"]) == 401
        userinfo = await http.get(
            "/oauth2/userinfo",
            headers={"Authorization": f"Bearer {old['access_token']}"},
        )
        assert userinfo.status_code == 401
        for token in (old["access_token"], old["refresh_token"]):
            assert await _introspect(http, resource_server, token) == {"active": False}
        refreshed = await http.post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]},
            auth=client.basic_auth,
        )
        assert refreshed.status_code == 400
        # The user is enabled: a new login works at once.
        new = await _login(http, client, user.username)
        assert await _me(http, new["access_token"]) == 200


async def test_a_deleted_clients_tokens_are_not_its_namesakes(live, session_factory):
    client = await make_client(session_factory, grant_types=BOTH_GRANTS)
    resource_server = await make_client(session_factory, grant_types=BOTH_GRANTS)
    user = await make_user(session_factory)
    async with httpx2.AsyncClient(base_url=live) as http:
        users_token = (await _login(http, client, user.username))["access_token"]
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=client.basic_auth,
        )
        assert response.status_code == 200, response.text
        clients_token = response.json()["access_token"]
        for token in (users_token, clients_token):
            assert (await _introspect(http, resource_server, token))["active"] is True

        async with session_factory() as session:
            clients = ClientRepository(session)
            await clients.delete(await resolve_client(client.client_id, clients))
            await session.commit()
        namesake = await make_client(
            session_factory, grant_types=BOTH_GRANTS, client_id=client.client_id
        )

        assert await _me(http, users_token) == 401
        for token in (users_token, clients_token):
            assert await _introspect(http, resource_server, token) == {"active": False}
        # The namesake's own tokens are good.
        fresh = (await _login(http, namesake, user.username))["access_token"]
        assert await _me(http, fresh) == 200
