"""The example resource server beside a real authserver, across a key rotation."""

import base64
import json

import httpx2

from authserver.services.keystore import keystore_from_settings
from examples.resource_server import KeyCache, UnavailableError, create_app
from tests.conftest import make_settings
from tests.factories import DEFAULT_PASSWORD, make_client, make_user


def kid_of(token: str) -> str:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))[
        "kid"
    ]


async def test_resource_server_verifies_offline_across_rotation(
    live, session_factory, database_url, tmp_path
):
    client = await make_client(session_factory, scopes=("profile", "reports"))
    user = await make_user(session_factory)
    resource = create_app(live, refetch_interval=0)
    keys: KeyCache = resource.state.keys

    async def login(scope: str) -> str:
        form = {
            "grant_type": "password",
            "username": user.username,
            "password": DEFAULT_PASSWORD,
            "scope": scope,
        }
        async with httpx2.AsyncClient(base_url=live) as http:
            answer = await http.post("/oauth2/token", data=form, auth=client.basic_auth)
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    transport = httpx2.ASGITransport(app=resource)
    async with httpx2.AsyncClient(transport=transport, base_url="http://api") as api:

        async def call(path: str, token: str | None) -> httpx2.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return await api.get(path, headers=headers)

        before = await login("profile reports")
        hello = await call("/hello", before)
        assert hello.status_code == 200, hello.text
        assert hello.json() == {"sub": str(user.id), "client_id": client.client_id}
        assert (await call("/reports", before)).status_code == 200
        narrow = await login("profile")
        refused = await call("/reports", narrow)
        assert refused.status_code == 403
        assert 'scope="reports"' in refused.headers["www-authenticate"]
        assert (await call("/hello", None)).status_code == 401
        assert (await call("/hello", "not.a.token")).status_code == 401
        assert keys.fetch_count == 1  # one JWKS fetch served every check so far

        # The live server re-reads its key store on every request in tests.
        settings = make_settings(database_url, tmp_path / "keys")
        await keystore_from_settings(settings).rotate(immediate=True)
        after = await login("profile reports")
        assert kid_of(after) != kid_of(before)

        assert (await call("/reports", after)).status_code == 200
        assert keys.fetch_count == 2  # the unknown kid cost exactly one refetch
        assert (await call("/hello", before)).status_code == 200  # old key kept
        assert (await call("/hello", after)).status_code == 200
        assert keys.fetch_count == 2


async def test_unknown_kids_cannot_flood_the_issuer(live, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    resource = create_app(live, refetch_interval=60)
    keys: KeyCache = resource.state.keys
    form = {
        "grant_type": "password",
        "username": user.username,
        "password": DEFAULT_PASSWORD,
    }
    async with httpx2.AsyncClient(base_url=live) as http:
        token = (
            await http.post("/oauth2/token", data=form, auth=client.basic_auth)
        ).json()["access_token"]
    header, payload, signature = token.split(".")
    fields = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))

    transport = httpx2.ASGITransport(app=resource)
    async with httpx2.AsyncClient(transport=transport, base_url="http://api") as api:
        auth = {"Authorization": f"Bearer {token}"}
        assert (await api.get("/hello", headers=auth)).status_code == 200
        for n in range(5):
            made_up = {**fields, "kid": f"made-up-{n}"}
            encoded = base64.urlsafe_b64encode(json.dumps(made_up).encode())
            forged = f"{encoded.rstrip(b'=').decode()}.{payload}.{signature}"
            answer = await api.get(
                "/hello", headers={"Authorization": f"Bearer {forged}"}
            )
            assert answer.status_code == 401
            assert 'error="invalid_token"' in answer.headers["www-authenticate"]

    assert keys.fetch_count == 1


async def _unreachable(url: str) -> tuple[dict, float | None]:
    raise UnavailableError(f"cannot fetch {url}")


async def _impostor(url: str) -> tuple[dict, float | None]:
    return {
        "issuer": "https://evil.example",
        "jwks_uri": "https://evil.example/k",
    }, None


async def test_issuer_down_or_impostor_is_503():
    token = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsifQ.e30.c2ln"
    for fetch in (_unreachable, _impostor):
        resource = create_app("https://issuer.example", fetch=fetch)
        transport = httpx2.ASGITransport(app=resource)
        async with httpx2.AsyncClient(
            transport=transport, base_url="http://api"
        ) as api:
            answer = await api.get(
                "/hello", headers={"Authorization": f"Bearer {token}"}
            )
        assert answer.status_code == 503
