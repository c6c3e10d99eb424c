"""A real browser (Debian's Chromium, headless, JavaScript off) signs in through
the hosted pages of a real server, consents, lands at the app's callback; the
app exchanges the code, refreshes, and the browser signs out, which ends the
app's refresh token too."""

import os
import shutil
from pathlib import Path
from urllib.parse import urlencode

import httpx2
import pytest
from playwright.async_api import Browser, async_playwright

from tests.api.helpers import assert_oauth_error, refresh_grant
from tests.callback_server import callback_server
from tests.factories import DEFAULT_PASSWORD, make_code_client, make_user
from tests.oauth_flow import authorize_params, new_pkce

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots of the pages, for a human to look at (gitignored).
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

REQUIRE_BROWSER = os.environ.get("AUTH_TEST_REQUIRE_BROWSER") == "1"
NO_BROWSER = "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"


@pytest.fixture(autouse=True)
def chromium_installed() -> None:
    """Skip without Chromium, except in CI (AUTH_TEST_REQUIRE_BROWSER=1): fail."""
    if CHROMIUM.exists():
        return
    if REQUIRE_BROWSER:
        pytest.fail(NO_BROWSER)
    pytest.skip(NO_BROWSER)


async def launch(playwright) -> Browser:
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


def save(screenshot: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(screenshot, ARTIFACTS / screenshot.name)


async def test_browser_signs_in_consents_and_signs_out(live, session_factory, tmp_path):
    user = await make_user(session_factory, username="ada")
    async with callback_server() as rp, async_playwright() as playwright:
        client = await make_code_client(
            session_factory,
            name="Acme Notes",
            is_third_party=True,
            redirect_uris=(rp.url("/callback"),),
            post_logout_redirect_uris=(rp.url("/logged-out"),),
        )
        pkce = new_pkce()
        params = authorize_params(client.client_id, rp.url("/callback"), pkce)
        browser = await launch(playwright)
        context = await browser.new_context(java_script_enabled=False)
        page = await context.new_page()

        await page.goto(f"{live}/oauth2/authorize?{urlencode(params)}")
        assert await page.title() == "Sign in · authserver"
        await page.screenshot(path=tmp_path / "login.png", full_page=True)
        save(tmp_path / "login.png")

        # Keyboard only: the username field has focus, Tab reaches the password.
        await page.keyboard.type("ada")
        await page.keyboard.press("Tab")
        await page.keyboard.type("not the password")
        await page.keyboard.press("Enter")
        await page.wait_for_load_state()
        alert = page.get_by_role("alert")
        assert (await alert.inner_text()).strip() == "Incorrect username or password."
        await page.screenshot(path=tmp_path / "login-error.png", full_page=True)
        save(tmp_path / "login-error.png")

        await page.get_by_label("Password").fill(DEFAULT_PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_load_state()
        assert await page.title() == "Allow access · authserver"
        assert "Acme Notes" in await page.content()
        await page.screenshot(path=tmp_path / "consent.png", full_page=True)
        save(tmp_path / "consent.png")

        await page.get_by_role("button", name="Allow").click()
        callback = await rp.wait("/callback")
        assert callback["state"] == params["state"]
        assert callback["iss"] == live
        assert page.url.startswith(rp.url("/callback?"))

        async with httpx2.AsyncClient(base_url=live) as http:
            tokens = await http.post(
                "/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": callback["code"],
                    "redirect_uri": rp.url("/callback"),
                    "code_verifier": pkce.verifier,
                    "client_id": client.client_id,
                },
            )
            assert tokens.status_code == 200, tokens.text
            refreshed = await http.post(
                "/oauth2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": tokens.json()["refresh_token"],
                    "client_id": client.client_id,
                },
            )
            assert refreshed.status_code == 200, refreshed.text
        id_token = refreshed.json().get("id_token") or tokens.json()["id_token"]

        # Without a hint the user is asked; staying signed in changes nothing.
        await page.goto(f"{live}/oauth2/logout?client_id={client.client_id}")
        assert await page.title() == "Sign out · authserver"
        await page.screenshot(path=tmp_path / "logout.png", full_page=True)
        save(tmp_path / "logout.png")
        await page.get_by_role("button", name="Cancel").click()
        await page.wait_for_load_state()
        assert "still signed in" in await page.content()

        # An unregistered redirect URI: an error page, no redirect.
        bad = {**params, "redirect_uri": rp.url("/callback/../evil")}
        await page.goto(f"{live}/oauth2/authorize?{urlencode(bad)}")
        assert "not registered" in await page.get_by_role("alert").inner_text()
        await page.screenshot(path=tmp_path / "error.png", full_page=True)
        save(tmp_path / "error.png")

        logout = {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": rp.url("/logged-out"),
            "state": "bye",
        }
        await page.goto(f"{live}/oauth2/logout?{urlencode(logout)}")
        assert (await rp.wait("/logged-out"))["state"] == "bye"
        async with httpx2.AsyncClient(base_url=live) as http:
            after = await refresh_grant(http, client, refreshed.json()["refresh_token"])
        assert_oauth_error(after, 400, "invalid_grant")

        # Signed out: a silent request now needs a login.
        silent = {**authorize_params(client.client_id, rp.url("/callback"), pkce)}
        silent["prompt"] = "none"
        await page.goto(f"{live}/oauth2/authorize?{urlencode(silent)}")
        errors = [q for path, q in rp.hits if path == "/callback" and "error" in q]
        assert errors and errors[0]["error"] == "login_required"
        await browser.close()
