"""The pages' packaging: the stylesheet is served, templates can be replaced
from AUTH_TEMPLATES_DIR, cookies are Secure and __Host- under an https issuer."""

import httpx2

from authserver.api.state import app_state
from authserver.api.templates import Pages
from authserver.core.exceptions import InvalidRequestError
from authserver.main import create_app
from tests.conftest import make_settings
from tests.factories import CALLBACK, make_code_client
from tests.oauth_flow import authorize_params, new_pkce


async def test_stylesheet_is_served_from_the_package(api):
    answer = await api.get("/assets/authserver.css")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in answer.text


def test_templates_dir_replaces_a_page_by_name(tmp_path):
    (tmp_path / "error.html").write_text("<p>custom {{ message }}</p>")
    pages = Pages("https://login.example.com/auth", tmp_path)
    answer = pages.error(InvalidRequestError("nope <b>"))
    assert answer.body == b"<p>custom nope &lt;b&gt;</p>"  # still autoescaped
    login = pages.env.get_template("login.html")  # the others stay built in
    assert "/auth/assets/authserver.css" in login.render(
        client_name="x", action="/a", request_id="r", csrf_token="c", username=None,
        error=None,
    )  # fmt: skip


async def test_https_issuer_makes_host_only_secure_cookies(tmp_path):
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        tmp_path / "keys",
        issuer="https://login.example.com",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        client = await make_code_client(app_state(app).sessions())
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(
            transport=transport, base_url=settings.issuer
        ) as http:
            params = authorize_params(client.client_id, CALLBACK, new_pkce())
            page = await http.get("/oauth2/authorize", params=params)
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-authserver_csrf=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
