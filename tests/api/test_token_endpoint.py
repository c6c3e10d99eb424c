"""POST /oauth2/token request handling: the fast path and the FastAPI route.

The app answers the token endpoint ahead of FastAPI's stack (TokenEndpoint);
the route in v1/token.py documents it and must answer the same way.
"""

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from authserver.api.pipeline import Dispatcher, build_pipeline
from authserver.api.state import app_state
from authserver.api.token_endpoint import TokenEndpoint
from authserver.main import AuthServerApp
from tests import factories
from tests.api.helpers import TOKEN_URL, assert_oauth_error, tokens
from tests.conftest import TEST_ISSUER
from tests.factories import DEFAULT_PASSWORD, make_client, make_user
from tests.logs import capture_logs

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Headers that differ between two answers to the same request by design.
PER_REQUEST_HEADERS = {"x-request-id", "date"}


def grant_body(username: str, *extra: str) -> bytes:
    """A password grant form (client by Basic auth), plus raw extra parameters."""
    base = urlencode(
        {"grant_type": "password", "username": username, "password": DEFAULT_PASSWORD}
    )
    return "&".join([base, *extra]).encode()


async def post_form(
    api: httpx2.AsyncClient,
    body: bytes,
    *,
    auth: tuple[str, str] | None = None,
    request_id: str | None = None,
) -> httpx2.Response:
    headers = dict(FORM)
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    extra: dict[str, Any] = {} if auth is None else {"auth": auth}
    return await api.post(TOKEN_URL, content=body, headers=headers, **extra)


async def oversized_chunks(size: int) -> AsyncIterator[bytes]:
    """A body of `size` bytes sent without Content-Length (chunked)."""
    sent = 0
    while sent < size:
        chunk = b"x" * min(1024, size - sent)
        sent += len(chunk)
        yield chunk


@pytest.fixture
async def routed(app: FastAPI, clean_db: None) -> AsyncIterator[httpx2.AsyncClient]:
    """A client whose requests skip the fast paths and go through FastAPI's router.

    Built like `api` (the session-wide `app` already ran its lifespan): same
    base URL, same app, settings and pipeline layers; only the dispatcher's
    fast paths are left out.
    """
    assert isinstance(app, AuthServerApp)
    settings = app_state(app).settings
    through_fastapi = build_pipeline(
        Dispatcher(app.framework, ()), max_body_bytes=settings.max_body_bytes
    )
    transport = httpx2.ASGITransport(app=through_fastapi)
    async with httpx2.AsyncClient(transport=transport, base_url=TEST_ISSUER) as client:
        yield client


@pytest.fixture
def served_by(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which way each token request reached TokenEndpoint: "fast" (the
    dispatcher calls the endpoint as an ASGI app) or "router" (the FastAPI
    route calls `respond`)."""
    fast, routed = TokenEndpoint.__call__, TokenEndpoint.respond
    ways: list[str] = []

    async def fast_spy(self: TokenEndpoint, scope: Scope, *args: Any) -> None:
        ways.append("fast")
        await fast(self, scope, *args)

    async def router_spy(self: TokenEndpoint, request: Request) -> Response:
        ways.append("router")
        return await routed(self, request)

    monkeypatch.setattr(TokenEndpoint, "__call__", fast_spy)
    monkeypatch.setattr(TokenEndpoint, "respond", router_spy)
    return ways


# --- Encoding --------------------------------------------------------------

INVALID_UTF8 = {
    "raw-0xff": b"x=\xff",
    "escaped-ff": b"x=%ff",
    "escaped-in-name": b"%ff=x",
    "truncated-sequence": b"x=%c3",
    "overlong-slash": b"x=%c0%af",
    "surrogate": b"x=%ed%a0%80",
}


@pytest.mark.parametrize("extra", list(INVALID_UTF8.values()), ids=list(INVALID_UTF8))
async def test_a_body_that_is_not_utf8_is_invalid_request(api, session_factory, extra):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    body = grant_body(user.username) + b"&" + extra

    response = await post_form(
        api, body, auth=client.basic_auth, request_id="utf8-check-1"
    )

    assert_oauth_error(response, 400, "invalid_request")
    assert response.json()["error_description"] == "the body is not valid UTF-8"
    assert response.headers["x-request-id"] == "utf8-check-1"


async def test_valid_utf8_in_an_unknown_parameter_is_accepted(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    body = grant_body(user.username, "x=%c3%a9", "y=\u00e9\u4e2d")

    response = await post_form(api, body, auth=client.basic_auth)

    assert tokens(response)["access_token"]


async def test_a_non_ascii_password_is_decoded_as_utf8(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory, password="päss wört 中文 ok")
    form = {"grant_type": "password", "username": user.username}
    body = urlencode(form) + "&password=p%C3%A4ss+w%C3%B6rt+%E4%B8%AD%E6%96%87+ok"

    response = await post_form(api, body.encode(), auth=client.basic_auth)

    assert tokens(response)["access_token"]


# --- Parameter count -------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "accepted"),
    [(31, True), (32, True), (33, False), (200, False)],
    ids=["31", "32-the-cap", "33", "200"],
)
async def test_at_most_32_parameters(api, session_factory, total, accepted):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    unknown = [f"extra{i}=1" for i in range(total - 3)]  # 3: the grant's own

    response = await post_form(
        api, grant_body(user.username, *unknown), auth=client.basic_auth
    )

    if accepted:
        assert tokens(response)["access_token"]
    else:
        assert_oauth_error(response, 400, "invalid_request")
        assert response.json()["error_description"] == "too many parameters"


async def test_the_cap_counts_client_secret_post_parameters(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    credentials = urlencode(client.form())  # client_id and client_secret: 2 more
    at_cap = grant_body(user.username, credentials, *[f"e{i}=1" for i in range(27)])
    over = grant_body(user.username, credentials, *[f"e{i}=1" for i in range(28)])

    assert tokens(await post_form(api, at_cap))["access_token"]
    assert_oauth_error(await post_form(api, over), 400, "invalid_request")


# --- Parameters without a value -------------------------------------------


async def test_a_parameter_without_equals_sign_is_ignored(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)

    response = await post_form(
        api, grant_body(user.username, "junk"), auth=client.basic_auth
    )

    assert tokens(response)["access_token"]


async def test_a_bare_scope_counts_as_omitted(api, session_factory):
    client = await make_client(session_factory, scopes=("profile", "email"))
    user = await make_user(session_factory)

    response = await post_form(
        api, grant_body(user.username, "scope"), auth=client.basic_auth
    )

    assert tokens(response)["scope"] == "profile email"  # the client's default


@pytest.mark.parametrize("bare", ["username", "password", "grant_type"])
async def test_a_bare_required_parameter_is_missing(api, session_factory, bare):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    form = {
        "grant_type": "password",
        "username": user.username,
        "password": DEFAULT_PASSWORD,
    }
    del form[bare]
    body = f"{urlencode(form)}&{bare}".encode()

    response = await post_form(api, body, auth=client.basic_auth)

    assert_oauth_error(response, 400, "invalid_request")
    description = response.json()["error_description"]
    assert bare in description and "required" in description


# --- Request ids and the access line ---------------------------------------


def _ok(client: factories.TestClient, username: str) -> dict[str, Any]:
    return {"content": grant_body(username), "auth": client.basic_auth}


def _wrong_password(client: factories.TestClient, username: str) -> dict[str, Any]:
    body = urlencode(
        {"grant_type": "password", "username": username, "password": "wrong-pw!"}
    )
    return {"content": body.encode(), "auth": client.basic_auth}


def _wrong_secret(client: factories.TestClient, username: str) -> dict[str, Any]:
    return {"content": grant_body(username), "auth": (client.client_id, "nope")}


def _unknown_grant(client: factories.TestClient, username: str) -> dict[str, Any]:
    return {"content": b"grant_type=urn:x:nope", "auth": client.basic_auth}


def _not_utf8(client: factories.TestClient, username: str) -> dict[str, Any]:
    return {"content": grant_body(username, "x=%ff"), "auth": client.basic_auth}


def _too_many(client: factories.TestClient, username: str) -> dict[str, Any]:
    extra = [f"e{i}=1" for i in range(30)]
    return {"content": grant_body(username, *extra), "auth": client.basic_auth}


def _declared_too_large(client: factories.TestClient, username: str) -> dict[str, Any]:
    return {"content": b"x" * 100_000}


def _chunked_too_large(client: factories.TestClient, username: str) -> dict[str, Any]:
    return {"content": oversized_chunks(100 * 1024)}


RequestBuilder = Callable[[factories.TestClient, str], dict[str, Any]]

# name: (request, status, error code; None for success)
TOKEN_REQUESTS: dict[str, tuple[RequestBuilder, int, str | None]] = {
    "success": (_ok, 200, None),
    "invalid-grant": (_wrong_password, 400, "invalid_grant"),
    "invalid-client": (_wrong_secret, 401, "invalid_client"),
    "unsupported-grant": (_unknown_grant, 400, "unsupported_grant_type"),
    "not-utf8": (_not_utf8, 400, "invalid_request"),
    "too-many-parameters": (_too_many, 400, "invalid_request"),
    "declared-too-large": (_declared_too_large, 413, "invalid_request"),
    "chunked-too-large": (_chunked_too_large, 413, "invalid_request"),
}


@pytest.mark.parametrize(
    ("build", "status", "error"),
    list(TOKEN_REQUESTS.values()),
    ids=list(TOKEN_REQUESTS),
)
async def test_request_id_echoed_and_one_access_line(
    api, session_factory, build, status, error
):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    headers = {**FORM, "X-Request-ID": "caller-trace.42"}

    with capture_logs() as logs:
        response = await api.post(
            TOKEN_URL, headers=headers, **build(client, user.username)
        )

    assert response.status_code == status, response.text
    assert response.headers["x-request-id"] == "caller-trace.42"
    assert response.headers["cache-control"] == "no-store"
    (line,) = logs.named("http_request")
    assert line["request_id"] == "caller-trace.42"
    assert line["method"] == "POST"
    assert line["route"] == line["path"] == TOKEN_URL
    assert line["status"] == status
    assert line["error"] == error
    if error is None:
        assert line["client_id"] == client.client_id
        assert line["grant_type"] == "password"
    else:
        assert response.json()["error"] == error
    # Every other line the server wrote for it carries the caller's id too.
    server_lines = [r for r in logs.records() if r["logger"].startswith("authserver")]
    assert {r["request_id"] for r in server_lines} == {"caller-trace.42"}


@pytest.mark.parametrize(
    "incoming", ["has space", "a" * 129, "<x>"], ids=["space", "too-long", "markup"]
)
async def test_an_unsafe_request_id_is_replaced_on_the_token_path(
    api, session_factory, incoming
):
    client = await make_client(session_factory)
    user = await make_user(session_factory)

    with capture_logs() as logs:
        response = await post_form(
            api, grant_body(user.username), auth=client.basic_auth, request_id=incoming
        )

    assert tokens(response)
    echoed = response.headers["x-request-id"]
    assert echoed != incoming and len(echoed) == 32
    (line,) = logs.named("http_request")
    assert line["request_id"] == echoed


async def test_each_token_request_gets_its_own_id(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)

    with capture_logs() as logs:
        first = await post_form(api, grant_body(user.username), auth=client.basic_auth)
        second = await post_form(api, b"grant_type=nope", auth=client.basic_auth)

    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1]
    assert [line["request_id"] for line in logs.named("http_request")] == ids


# --- The FastAPI route answers like the fast path --------------------------


def _password_form(client: factories.TestClient, username: str) -> dict[str, Any]:
    form = {"grant_type": "password", "username": username}
    return {"data": {**form, "password": DEFAULT_PASSWORD, **client.form()}}


def _unknown_client(client: factories.TestClient, username: str) -> dict[str, Any]:
    return {"content": b"grant_type=client_credentials&client_id=nobody-here"}


def _json_body(client: factories.TestClient, username: str) -> dict[str, Any]:
    return {"json": {"grant_type": "password"}, "auth": client.basic_auth}


def _repeated(client: factories.TestClient, username: str) -> dict[str, Any]:
    body = grant_body(username, "grant_type=password")
    return {"content": body, "auth": client.basic_auth}


PARITY_REQUESTS: dict[str, RequestBuilder] = {
    "basic-auth-grant": _ok,
    "secret-post-grant": _password_form,
    "invalid-grant": _wrong_password,
    "invalid-client": _wrong_secret,
    "unknown-client": _unknown_client,
    "unsupported-grant": _unknown_grant,
    "not-utf8": _not_utf8,
    "too-many-parameters": _too_many,
    "repeated-parameter": _repeated,
    "json-body": _json_body,
    "chunked-too-large": _chunked_too_large,
}


def comparable_headers(response: httpx2.Response) -> dict[str, str]:
    headers = {k.lower(): v for k, v in response.headers.items()}
    for name in PER_REQUEST_HEADERS:
        headers.pop(name, None)
    if response.status_code == 200:
        headers.pop("content-length")  # tokens differ in length
    return headers


@pytest.mark.parametrize(
    "build", list(PARITY_REQUESTS.values()), ids=list(PARITY_REQUESTS)
)
async def test_the_fastapi_route_answers_like_the_fast_path(
    api, routed, session_factory, served_by, build
):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    answers = {}
    for name, http in {"fast": api, "router": routed}.items():
        kwargs = build(client, user.username)
        headers = {"X-Request-ID": f"parity-{name}"}
        if "content" in kwargs:
            headers.update(FORM)
        with capture_logs() as logs:
            answers[name] = await http.post(TOKEN_URL, headers=headers, **kwargs)
        (line,) = logs.named("http_request")
        assert line["route"] == TOKEN_URL and line["request_id"] == f"parity-{name}"
        assert line["status"] == answers[name].status_code
        assert answers[name].headers["x-request-id"] == f"parity-{name}"

    fast, router = answers["fast"], answers["router"]
    assert served_by == ["fast", "router"]  # each client took its own way
    assert router.status_code == fast.status_code, router.text
    assert comparable_headers(router) == comparable_headers(fast)
    assert router.headers["cache-control"] == "no-store"
    assert router.headers["pragma"] == "no-cache"
    if fast.status_code == 200:
        assert router.json().keys() == fast.json().keys()
        for field in ("token_type", "expires_in", "scope"):
            assert router.json()[field] == fast.json()[field]
    else:
        assert router.json() == fast.json()


async def test_the_fastapi_stack_refuses_a_declared_too_large_body(routed, served_by):
    response = await routed.post(TOKEN_URL, content=b"x" * 100_000, headers=FORM)

    assert_oauth_error(response, 413, "invalid_request")
    assert response.headers["x-request-id"]
    assert served_by == []  # refused before the route


# --- Other methods and the OpenAPI document --------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_other_methods_are_405_from_the_router(api, served_by, method):
    with capture_logs() as logs:
        response = await api.request(method, TOKEN_URL, headers={"X-Request-ID": "m-1"})

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "method_not_allowed"
    assert response.headers["x-request-id"] == "m-1"
    assert served_by == []
    (line,) = logs.named("http_request")
    assert line["status"] == 405 and line["route"] == TOKEN_URL


@pytest.mark.parametrize(
    "url", [TOKEN_URL + "/", "/oauth2/introspect/", "/.well-known/jwks.json/"]
)
async def test_a_trailing_slash_is_not_redirected(api, url):
    # A redirect would be built from the Host header and, as a 307, resend
    # the body (secrets included) wherever that pointed.
    response = await api.post(
        url,
        data={"grant_type": "client_credentials", "client_secret": "s3cret"},
        headers={"Host": "evil.example"},
    )

    assert response.status_code in (404, 405)
    assert "location" not in response.headers


async def test_openapi_documents_the_token_form(api):
    schema = (await api.get("/openapi.json")).json()

    operations = schema["paths"][TOKEN_URL]
    assert set(operations) == {"post"}
    post = operations["post"]
    body = post["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/x-www-form-urlencoded"}
    form = body["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["required"] == ["grant_type"]
    assert set(form["properties"]) == {
        "grant_type",
        "username",
        "password",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
        "code",
        "redirect_uri",
        "code_verifier",
    }
    assert sorted(form["properties"]["grant_type"]["enum"]) == [
        "authorization_code",
        "client_credentials",
        "password",
        "refresh_token",
    ]
    for secret in ("password", "refresh_token", "client_secret", "code"):
        assert form["properties"][secret]["format"] == "password"
    assert {"200", "400", "401"} <= set(post["responses"])
    ok = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/TokenResponse")
