"""Ending a browser session ends what it signed in to (issue 13): after
RP-Initiated Logout or `authctl session revoke` has answered, the refresh
tokens of the families its code exchanges made no longer rotate, and their
access tokens are inactive at introspection and refused at userinfo. The
user's password-grant tokens are another login and live on."""

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import jwt as pyjwt
import pytest

from authserver.models import User
from tests import factories
from tests.api.helpers import (
    ME_URL,
    USERINFO_URL,
    assert_bearer_error,
    assert_oauth_error,
    bearer,
    introspect,
    refresh_grant,
    tokens,
    user_tokens,
)
from tests.cli.helpers import cli_env, run_authctl
from tests.factories import (
    CALLBACK,
    DEFAULT_PASSWORD,
    LOGGED_OUT,
    make_client,
    make_code_client,
    make_user,
)
from tests.oauth_flow import authorize_params, new_pkce, query_of, sign_in

BOTH_GRANTS = ("password", "refresh_token", "client_credentials")


async def code_flow_tokens(
    http: httpx2.AsyncClient, client: factories.TestClient, username: str
) -> dict[str, Any]:
    """Sign in through the hosted login page (the cookie stays in `http`)
    and exchange the code; the token response."""
    pkce = new_pkce()
    params = authorize_params(client.client_id, CALLBACK, pkce)
    answer = await sign_in(http, params, username, DEFAULT_PASSWORD)
    assert answer.status_code == 303, answer.text
    form = {
        "grant_type": "authorization_code",
        "code": query_of(answer.headers["location"])["code"],
        "redirect_uri": CALLBACK,
        "code_verifier": pkce.verifier,
        **client.form(),
    }
    return tokens(await http.post("/oauth2/token", data=form))


async def rotated(
    http: httpx2.AsyncClient, client: factories.TestClient, body: dict[str, Any]
) -> dict[str, Any]:
    """The next token response of the family (the rotation must succeed)."""
    return tokens(await refresh_grant(http, client, body["refresh_token"]))


async def assert_alive(
    http: httpx2.AsyncClient,
    client: factories.TestClient,
    resource_server: factories.TestClient,
    body: dict[str, Any],
) -> dict[str, Any]:
    """The access token works and the refresh token rotates; the new pair."""
    assert (await introspect(http, resource_server, body["access_token"]))["active"]
    userinfo = await http.get(USERINFO_URL, headers=bearer(body["access_token"]))
    assert userinfo.status_code == 200, userinfo.text
    return await rotated(http, client, body)


async def assert_dead(
    http: httpx2.AsyncClient,
    client: factories.TestClient,
    resource_server: factories.TestClient,
    body: dict[str, Any],
) -> None:
    refused = await refresh_grant(http, client, body["refresh_token"])
    assert_oauth_error(refused, 400, "invalid_grant")
    for token in (body["access_token"], body["refresh_token"]):
        assert await introspect(http, resource_server, token) == {"active": False}
    for path in (USERINFO_URL, ME_URL):
        refused = await http.get(path, headers=bearer(body["access_token"]))
        assert_bearer_error(refused, 401, "invalid_token")


@dataclass
class TwoLogins:
    """A user signed in through the browser (one code exchange, refreshed
    once) and through the password grant, both families proved alive."""

    http: httpx2.AsyncClient  # the browser: it holds the session cookie
    user: User
    app: factories.TestClient
    password_app: factories.TestClient
    resource_server: factories.TestClient
    browser: dict[str, Any]  # the code flow's newest token response
    id_token: str  # the code exchange's
    other: dict[str, Any]  # the password grant's

    async def assert_logout_ended_only_the_browsers(self) -> None:
        await assert_dead(self.http, self.app, self.resource_server, self.browser)
        await assert_alive(
            self.http, self.password_app, self.resource_server, self.other
        )


async def two_logins(http: httpx2.AsyncClient, session_factory: Any) -> TwoLogins:
    user = await make_user(session_factory)
    app = await make_code_client(session_factory)
    password_app = await make_client(session_factory)
    resource_server = await make_client(session_factory, grant_types=BOTH_GRANTS)
    first = await code_flow_tokens(http, app, user.username)
    browser = await assert_alive(http, app, resource_server, first)
    other = await user_tokens(http, password_app, user.username)
    return TwoLogins(
        http,
        user,
        app,
        password_app,
        resource_server,
        browser,
        first["id_token"],
        other,
    )


async def test_logout_with_a_hint_ends_the_sign_ins_tokens(live, session_factory):
    async with httpx2.AsyncClient(base_url=live) as http:
        logins = await two_logins(http, session_factory)
        logout = {
            "id_token_hint": logins.id_token,
            "post_logout_redirect_uri": LOGGED_OUT,
        }
        answer = await http.get("/oauth2/logout", params=logout)
        assert answer.status_code == 302
        assert answer.headers["location"] == LOGGED_OUT

        await logins.assert_logout_ended_only_the_browsers()


@pytest.mark.parametrize("target", ["session-id", "user"])
async def test_authctl_session_revoke_ends_the_sign_ins_tokens(
    live, session_factory, database_url, tmp_path: Path, target
):
    async with httpx2.AsyncClient(base_url=live) as http:
        logins = await two_logins(http, session_factory)
        # The ID token's sid is the session's id, as `authctl session list` shows.
        claims = pyjwt.decode(logins.id_token, options={"verify_signature": False})
        args = (
            [claims["sid"]]
            if target == "session-id"
            else ["--user", logins.user.username, "--yes"]
        )
        env = cli_env(database_url, tmp_path / "cli-keys")
        done = await asyncio.to_thread(
            run_authctl, "session", "revoke", *args, env=env, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert "ended 1 session" in done.stdout

        await logins.assert_logout_ended_only_the_browsers()
