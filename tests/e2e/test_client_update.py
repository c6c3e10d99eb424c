"""`authctl client update` against a running server: the authorization endpoint
takes a redirect URI added by the command at once, signs the user in and sends
the code there, and answers one the command removed with its error page."""

import asyncio
import json
from pathlib import Path

import httpx2

from tests.cli.helpers import cli_env, run_authctl
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.oauth_flow import authorize_params, new_pkce, query_of, submit_login

OLD = "https://app.example.com/old-callback"
NEW = "http://127.0.0.1:9000/new-callback"


async def authctl(database_url: str, tmp_path: Path, *args: str) -> str:
    """Run the installed authctl (in a thread: the server shares this loop)."""
    env = cli_env(database_url, tmp_path / "cli-keys")
    done = await asyncio.to_thread(run_authctl, *args, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_redirect_uri_update_reaches_the_authorization_endpoint(
    live, database_url, session_factory, tmp_path
):
    await authctl(
        database_url,
        tmp_path,
        *("client", "create", "E2E app", "--client-id", "e2e-app", "--public"),
        *("--grant", "authorization_code", "--grant", "refresh_token"),
        *("--redirect-uri", OLD),
    )
    user = await make_user(session_factory)
    async with httpx2.AsyncClient(base_url=live) as browser:

        async def authorize(redirect_uri: str) -> httpx2.Response:
            params = authorize_params("e2e-app", redirect_uri, new_pkce())
            return await browser.get("/oauth2/authorize", params=params)

        assert (await authorize(NEW)).status_code == 400
        assert (await authorize(OLD)).status_code == 200

        updated = await authctl(
            database_url,
            tmp_path,
            *("client", "update", "e2e-app", "--json"),
            *("--add-redirect-uri", NEW, "--remove-redirect-uri", OLD),
        )
        assert json.loads(updated)["redirect_uris"] == [NEW]

        page = await authorize(NEW)
        assert page.status_code == 200, page.text
        signed_in = await submit_login(browser, page, user.username, DEFAULT_PASSWORD)
        refused = await authorize(OLD)

    assert signed_in.status_code == 303
    location = signed_in.headers["location"]
    assert location.startswith(NEW + "?") and query_of(location)["code"]
    # Never a redirect to a URI the client no longer has: the error page.
    assert refused.status_code == 400
    assert "location" not in refused.headers
    assert refused.headers["content-type"].startswith("text/html")
    assert "redirect_uri is not registered for this client" in refused.text
