"""GET /docs works offline: every asset from this server, with security headers."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.routing import Route

DOCS = "/docs"


class References(HTMLParser):
    """Every URL the page makes the browser load: src, href, and inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append(str(found[name]))
        self._in_script_without_src = tag == "script" and not found.get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script_without_src = False


def directives(csp: str) -> dict[str, list[str]]:
    parsed = {}
    for part in csp.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_html_security_headers(response: httpx2.Response) -> dict[str, list[str]]:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    csp = directives(response.headers["content-security-policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    return csp


async def test_docs_page_loads_only_same_origin_assets(api):
    page = await api.get(DOCS)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    parser = References()
    parser.feed(page.text)
    assert parser.inline_scripts == 0  # the CSP allows no inline script
    assert parser.urls, "the page references no assets"
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not same-origin"
        assert url.startswith("/")
    scripts = [u for u in parser.urls if u.endswith(".js")]
    styles = [u for u in parser.urls if u.endswith(".css")]
    assert len(scripts) == 2 and len(styles) == 1


async def test_docs_assets_are_served_with_their_types(api):
    page = await api.get(DOCS)
    parser = References()
    parser.feed(page.text)
    expected = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}

    for url in parser.urls:
        asset = await api.get(url)
        suffix = url[url.rindex(".") :]
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].split(";")[0] == expected[suffix], url
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert asset.content
    bundle = await api.get("/docs/assets/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content  # the real Swagger UI, not a stub
    spec = await api.get("/openapi.json")
    assert spec.status_code == 200 and spec.json()["paths"]


async def test_docs_page_has_a_csp_that_allows_only_what_it_loads(api):
    page = await api.get(DOCS)

    csp = assert_html_security_headers(page)
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]  # no inline or remote script, no eval
    assert csp["connect-src"] == ["'self'"]  # the spec and "try it out" only here
    for sources in csp.values():
        assert not any(s.startswith(("http:", "https:", "*")) for s in sources)


@pytest.mark.parametrize(
    "path",
    ["/redoc", "/docs/oauth2-redirect", "/docs/assets/redoc.standalone.js"],
)
async def test_no_cdn_pages_or_unlisted_files(api, path):
    response = await api.get(path)

    assert response.status_code == 404


async def test_docs_assets_refuse_paths_outside_the_list(api):
    for path in ("/docs/assets/..%2f__init__.py", "/docs/assets/%2e%2e/x"):
        assert (await api.get(path)).status_code == 404


async def test_any_html_page_gets_the_headers(app: FastAPI, api):
    """The layer covers pages added later (a login page), not just /docs: a
    page without its own CSP gets the strict default."""

    async def page(_request: object) -> HTMLResponse:
        return HTMLResponse("<p>hello</p>")

    app.router.routes.insert(0, Route("/test-only-page", page))
    try:
        response = await api.get("/test-only-page")
    finally:
        del app.router.routes[0]

    csp = assert_html_security_headers(response)
    assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"]
    json_answer = await api.get("/health/live")
    assert "content-security-policy" not in json_answer.headers
