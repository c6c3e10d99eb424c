"""A login storm with registrations and password changes: no 500, no 503.

A real uvicorn server with a deliberately small database pool and one bcrypt
at a time gets a burst of logins, sign-ups, password changes and admin
password resets at once. Every hash waits its turn behind the storm (seconds);
a hash inside a transaction would hold SQLite's one write lock or one of the
few PostgreSQL connections all that time, and the requests behind it would
fail with "database is locked" or a pool timeout (503), and open the breaker.
"""

import asyncio
import re
from collections import Counter
from pathlib import Path

import httpx2

from tests.factories import DEFAULT_PASSWORD, make_client, make_user
from tests.live import free_socket, live_server, live_settings

ROUNDS = 12  # ~0.2 s a hash: the storm queues for seconds
LOGIN_USERS, LOGINS_EACH = 6, 5
SIGN_UPS = 4
CHANGES = 3  # users changing their own password
RESETS = 2  # admin resets
NEW_PASSWORD = "a brand new passphrase"
OPENED = re.compile(r"^authserver_db_breaker_opened_total (\S+)$", re.MULTILINE)


async def breaker_openings(http: httpx2.AsyncClient, url: str) -> float:
    found = OPENED.search((await http.get(f"{url}/metrics")).text)
    assert found, "the breaker's counter is published"
    return float(found.group(1))


async def test_storm_of_hashes_leaves_the_database_to_everyone(
    database_url, tmp_path: Path, session_factory, clean_db
):
    sock = free_socket()
    settings = live_settings(
        database_url,
        tmp_path / "keys",
        sock,
        bcrypt_rounds=ROUNDS,
        password_hash_concurrency=1,
        db_pool_size=2,
        allow_self_registration=True,
    )
    client = await make_client(session_factory, scopes=("profile", "admin"))
    # Stored at the tests' cheap cost: each login re-hashes at ROUNDS.
    logins = [await make_user(session_factory) for _ in range(LOGIN_USERS)]
    changers = [await make_user(session_factory) for _ in range(CHANGES)]
    reset = [await make_user(session_factory) for _ in range(RESETS)]
    admin = await make_user(session_factory, is_admin=True)

    async with live_server(settings, sock) as url:
        async with httpx2.AsyncClient(timeout=120) as setup:

            async def token(username: str, scope: str = "profile") -> str:
                response = await setup.post(
                    f"{url}/oauth2/token",
                    data={
                        "grant_type": "password",
                        "username": username,
                        "password": DEFAULT_PASSWORD,
                        "scope": scope,
                    },
                    auth=client.basic_auth,
                )
                assert response.status_code == 200, response.text
                return str(response.json()["access_token"])

            admin_token = await token(admin.username, "admin profile")
            changer_tokens = [await token(user.username) for user in changers]
            opened_before = await breaker_openings(setup, url)

        async def login(http: httpx2.AsyncClient, username: str) -> httpx2.Response:
            return await http.post(
                f"{url}/oauth2/token",
                data={
                    "grant_type": "password",
                    "username": username,
                    "password": DEFAULT_PASSWORD,
                },
                auth=client.basic_auth,
            )

        async def sign_up(http: httpx2.AsyncClient, n: int) -> httpx2.Response:
            await asyncio.sleep(0.2)  # behind the logins in the hash queue
            body = {"username": f"storm-{n}", "password": DEFAULT_PASSWORD}
            return await http.post(f"{url}/api/v1/users", json=body)

        async def change(http: httpx2.AsyncClient, access: str) -> httpx2.Response:
            await asyncio.sleep(0.2)
            body = {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}
            return await http.post(
                f"{url}/api/v1/users/me/password",
                json=body,
                headers={"Authorization": f"Bearer {access}"},
            )

        async def reset_password(
            http: httpx2.AsyncClient, user_id: str
        ) -> httpx2.Response:
            await asyncio.sleep(0.2)
            return await http.post(
                f"{url}/api/v1/users/{user_id}/password",
                json={"password": NEW_PASSWORD},
                headers={"Authorization": f"Bearer {admin_token}"},
            )

        clients = []

        def fresh() -> httpx2.AsyncClient:
            clients.append(httpx2.AsyncClient(timeout=120))
            return clients[-1]

        storm = [
            *(login(fresh(), u.username) for u in logins for _ in range(LOGINS_EACH)),
            *(sign_up(fresh(), n) for n in range(SIGN_UPS)),
            *(change(fresh(), access) for access in changer_tokens),
            *(reset_password(fresh(), str(u.id)) for u in reset),
        ]
        try:
            answers = await asyncio.gather(*storm)
        finally:
            await asyncio.gather(*(http.aclose() for http in clients))

        async with httpx2.AsyncClient(timeout=30) as after:
            opened_after = await breaker_openings(after, url)
            ready = await after.get(f"{url}/health/ready")

    statuses = Counter(answer.status_code for answer in answers)
    logins_made = LOGIN_USERS * LOGINS_EACH
    assert statuses == {200: logins_made, 201: SIGN_UPS, 204: CHANGES + RESETS}, [
        (a.status_code, a.text[:200]) for a in answers if a.status_code >= 300
    ]
    assert opened_after == opened_before  # the breaker never opened
    assert ready.status_code == 200, ready.text
