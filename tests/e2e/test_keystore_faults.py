"""The signing-key store breaks while a real server runs, then is repaired.

Every request that needs the keys answers 503 temporarily_unavailable with
Retry-After (never a 500, and never a 401 that blames the client's token),
logs one error naming the fault and writes nothing; once the store is
repaired the very same requests succeed, without a restart. Each fault runs
on SQLite and PostgreSQL (the database store keeps its keys in that database).
"""

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import func, select

from authserver.core.config import Settings
from authserver.db.session import SessionFactory
from authserver.models import Base, User
from authserver.services.keystore import MANIFEST, keystore_from_settings
from tests import factories
from tests.conftest import make_settings
from tests.factories import (
    CALLBACK,
    DEFAULT_PASSWORD,
    make_client,
    make_code_client,
    make_user,
)
from tests.live import free_socket, live_server, live_settings
from tests.logs import capture_logs
from tests.oauth_flow import authorize_params, new_pkce, query_of, sign_in

PASSPHRASE = "the passphrase every server has"
# A second host rolled out a new passphrase before this server got it.
OTHER_PASSPHRASE = "a passphrase only the other host has"
CHECK_INTERVAL = 0.2  # AUTH_KEYSTORE_CHECK_INTERVAL, seconds
LOCKOUT = 2  # AUTH_LOCKOUT_THRESHOLD: the outage sends more logins than this
NOTICED = CHECK_INTERVAL + 3  # seconds: the server sees a change within this
UNAVAILABLE = {
    "error": "temporarily_unavailable",
    "error_description": "the service is temporarily unavailable",
}
KEY_TABLES = {"signing_keys", "signing_key_store"}


def host_settings(server: Settings, passphrase: str, *previous: str) -> Settings:
    """The settings of another host (or `authctl`) on the server's key store."""
    return make_settings(
        server.database_url,
        server.keys_dir,
        keys_store=server.keys_store,
        keys_passphrase=passphrase,
        keys_previous_passphrases=list(previous),
    )


Repair = Callable[[], Awaitable[None]]


async def rotate_elsewhere(settings: Settings) -> Repair:
    """Another host, on the new passphrase only, rotates: the server cannot
    open the key it adds. The repair: re-encrypt every key under the
    passphrase all servers have (`authctl key rewrap`)."""
    other = keystore_from_settings(
        host_settings(settings, OTHER_PASSPHRASE, PASSPHRASE)
    )
    try:
        await other.rotate()
    finally:
        await other.aclose()

    async def rewrap_for_the_fleet() -> None:
        fleet = keystore_from_settings(
            host_settings(settings, PASSPHRASE, OTHER_PASSPHRASE)
        )
        try:
            assert await fleet.rewrap()
        finally:
            await fleet.aclose()

    return rewrap_for_the_fleet


def replace(path: Path, data: bytes) -> None:
    """Write `path` whole at once, as an editor or deployment tool would."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


async def corrupt_manifest(settings: Settings) -> Repair:
    manifest = settings.keys_dir / MANIFEST
    saved = manifest.read_bytes()
    replace(manifest, b'{"version": 1, "keys": [')  # cut off mid-write

    async def restore() -> None:
        replace(manifest, saved)

    return restore


async def remove_manifest(settings: Settings) -> Repair:
    manifest = settings.keys_dir / MANIFEST
    moved = manifest.rename(manifest.with_name("manifest.moved"))

    async def put_back() -> None:
        moved.rename(manifest)

    return put_back


@dataclass
class Fault:
    store: str  # AUTH_KEYS_STORE
    names: str  # what the logged error must name
    damage: Callable[[Settings], Awaitable[Repair]]


FAULTS = {
    "file-corrupt-manifest": Fault("file", MANIFEST, corrupt_manifest),
    "file-missing-manifest": Fault("file", MANIFEST, remove_manifest),
    "file-key-under-another-passphrase": Fault(
        "file", "AUTH_KEYS_PASSPHRASE", rotate_elsewhere
    ),
    "database-row-under-another-passphrase": Fault(
        "database", "database key store", rotate_elsewhere
    ),
}


@pytest.fixture(params=list(FAULTS.values()), ids=list(FAULTS))
def fault(request: pytest.FixtureRequest) -> Fault:
    chosen: Fault = request.param
    return chosen


@dataclass
class Scene:
    """What a client holds from before the fault, and how to ask with it."""

    http: httpx2.AsyncClient
    client: factories.TestClient  # password, refresh_token and client_credentials
    code_client: factories.TestClient
    username: str
    access_token: str = ""
    refresh_token: str = ""
    code_form: dict[str, str] = field(default_factory=dict)

    async def token(
        self, form: dict[str, str], client: factories.TestClient | None = None
    ) -> httpx2.Response:
        auth = (client or self.client).basic_auth
        return await self.http.post("/oauth2/token", data=form, auth=auth)

    async def password(self) -> httpx2.Response:
        form = {"username": self.username, "password": DEFAULT_PASSWORD}
        return await self.token({"grant_type": "password", **form})

    async def client_credentials(self) -> httpx2.Response:
        return await self.token({"grant_type": "client_credentials"})

    async def refresh(self) -> httpx2.Response:
        form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        return await self.token(form)

    async def code_exchange(self) -> httpx2.Response:
        return await self.token(self.code_form, self.code_client)

    async def bearer(self, path: str) -> httpx2.Response:
        auth = {"Authorization": f"Bearer {self.access_token}"}
        return await self.http.get(path, headers=auth)

    async def userinfo(self) -> httpx2.Response:
        return await self.bearer("/oauth2/userinfo")

    async def own_user(self) -> httpx2.Response:
        return await self.bearer("/api/v1/users/me")

    async def introspect(self) -> httpx2.Response:
        return await self.http.post(
            "/oauth2/introspect",
            data={"token": self.access_token},
            auth=self.client.basic_auth,
        )

    async def revoke(self) -> httpx2.Response:
        return await self.http.post(
            "/oauth2/revoke",
            data={"token": self.refresh_token, "token_type_hint": "refresh_token"},
            auth=self.client.basic_auth,
        )


async def jwks_status_becomes(http: httpx2.AsyncClient, status: int) -> float:
    """Seconds until the JWKS answers `status` (the server saw the store change)."""
    started = time.monotonic()
    while (await http.get("/.well-known/jwks.json")).status_code != status:
        assert time.monotonic() - started < NOTICED, f"JWKS never answered {status}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def row_counts(factory: SessionFactory) -> dict[str, int]:
    """Rows per table, the key store's own tables aside (a fault changes them)."""
    async with factory() as session:
        return {
            table.name: int(
                (
                    await session.execute(select(func.count()).select_from(table))
                ).scalar_one()
            )
            for table in Base.metadata.sorted_tables
            if table.name not in KEY_TABLES
        }


async def failed_logins(factory: SessionFactory, username: str) -> int:
    async with factory() as session:
        user = await session.scalar(select(User).where(User.username == username))
        assert user is not None
        return user.failed_logins


def assert_unavailable(
    name: str, response: httpx2.Response, secrets: list[str]
) -> None:
    assert response.status_code == 503, (name, response.text)
    assert response.json() == UNAVAILABLE, name
    assert response.headers["cache-control"] == "no-store", name
    assert response.headers["pragma"] == "no-cache", name
    # Retry once the server will have looked at the store again.
    assert response.headers["retry-after"] == str(max(1, math.ceil(CHECK_INTERVAL)))
    # RFC 6750 §3: a challenge tells the client its token is bad; it is not.
    assert "www-authenticate" not in response.headers, name
    for secret in secrets:
        assert secret not in response.text, name


async def test_a_broken_key_store_is_503_and_recovers_without_restart(
    database_url: str,
    tmp_path: Path,
    session_factory: SessionFactory,
    clean_db: None,
    fault: Fault,
) -> None:
    sock = free_socket()
    settings = live_settings(
        database_url,
        tmp_path / "keys",
        sock,
        keys_store=fault.store,
        keys_passphrase=PASSPHRASE,
        keystore_check_interval=CHECK_INTERVAL,
        lockout_threshold=LOCKOUT,
    )
    client = await make_client(
        session_factory,
        grant_types=("password", "refresh_token", "client_credentials"),
    )
    code_client = await make_code_client(session_factory, public=False)
    user = await make_user(session_factory)

    with capture_logs() as logs:
        async with (
            live_server(settings, sock) as url,
            httpx2.AsyncClient(base_url=url) as http,
        ):
            scene = Scene(http, client, code_client, user.username)
            first = await scene.password()
            assert first.status_code == 200, first.text
            pkce = new_pkce()
            params = authorize_params(code_client.client_id, CALLBACK, pkce)
            signed_in = await sign_in(http, params, user.username, DEFAULT_PASSWORD)
            scene.access_token = first.json()["access_token"]
            scene.refresh_token = first.json()["refresh_token"]
            scene.code_form = {
                "grant_type": "authorization_code",
                "code": query_of(signed_in.headers["location"])["code"],
                "redirect_uri": CALLBACK,
                "code_verifier": pkce.verifier,
            }
            requests = {
                **{f"password-{n}": scene.password for n in range(LOCKOUT + 1)},
                "client_credentials": scene.client_credentials,
                "refresh_token": scene.refresh,
                "authorization_code": scene.code_exchange,
                "userinfo": scene.userinfo,
                "users-me": scene.own_user,
                "introspect": scene.introspect,
                "revoke": scene.revoke,
            }

            repair = await fault.damage(settings)
            await jwks_status_becomes(http, 503)
            before = await row_counts(session_factory)
            mark = len(logs.records())
            answers = {name: await ask() for name, ask in requests.items()}
            during = logs.records()[mark:]

            secrets = [PASSPHRASE, OTHER_PASSPHRASE, str(tmp_path)]
            for name, answer in answers.items():
                assert_unavailable(name, answer, secrets)
            # One error line per refused request, naming the store's fault.
            errors = [r for r in during if r["level"] == "ERROR"]
            assert [r.get("path") for r in errors] == [
                a.request.url.path for a in answers.values()
            ]
            for record in errors:
                assert record["message"] == "oauth_error"
                assert record["error"] == "temporarily_unavailable"
                assert fault.names in record["detail"]
            # Nothing was written: no row, no login counted against the lock.
            assert await row_counts(session_factory) == before
            assert await failed_logins(session_factory, user.username) == 0

            await repair()
            assert await jwks_status_becomes(http, 200) < NOTICED

            again = {name: await ask() for name, ask in requests.items()}
            for name, answer in again.items():
                assert answer.status_code == 200, (name, answer.text)
            # The refresh token was neither consumed nor revoked meanwhile;
            # the code was not used up.
            assert again["refresh_token"].json()["refresh_token"]
            assert again["authorization_code"].json()["access_token"]
            assert again["introspect"].json()["active"] is True

    assert PASSPHRASE not in logs.text and OTHER_PASSPHRASE not in logs.text
