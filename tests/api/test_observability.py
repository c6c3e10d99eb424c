"""Request ids (X-Request-ID) and the one access-log line per request."""

import logging
import re

import httpx2
import pytest

from authserver.main import create_app
from tests.api.helpers import password_grant, refresh_grant, tokens
from tests.factories import make_client, make_user
from tests.logs import capture_logs

JWKS = "/.well-known/jwks.json"


async def test_a_request_id_is_generated_and_echoed(api):
    first = await api.get(JWKS)
    second = await api.get(JWKS)

    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize(
    "incoming",
    ["abc-123", "0b6d2c0e-3f0e-4d5e-9b1a-2c3d4e5f6a7b", "trace.id_1", "a" * 128],
)
async def test_a_sane_request_id_is_kept(api, incoming):
    response = await api.get(JWKS, headers={"X-Request-ID": incoming})

    assert response.headers["x-request-id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["a" * 129, "has space", "semi;colon", "<script>", 'quote"d', ""],
    ids=["too-long", "space", "semicolon", "markup", "quote", "empty"],
)
async def test_an_unsafe_request_id_is_replaced(api, incoming):
    response = await api.get(JWKS, headers={"X-Request-ID": incoming})

    assert response.headers["x-request-id"] != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_every_line_written_for_a_request_carries_its_id(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    login = tokens(await password_grant(api, client, user.username))

    sql_logger = logging.getLogger("sqlalchemy.engine")
    sql_logger.setLevel(logging.INFO)  # SQLAlchemy keeps itself at WARNING
    try:
        with capture_logs() as logs:
            response = await refresh_grant(
                api, client, login["refresh_token"], scope="openid"
            )
            request_id = response.headers["x-request-id"]
            await api.get(JWKS)  # another request: its lines must not mix in
    finally:
        sql_logger.setLevel(logging.NOTSET)

    assert response.status_code == 200
    mine = [r for r in logs.records() if r["request_id"] == request_id]
    messages = {r["message"] for r in mine}
    assert {"refresh_token_rotated", "http_request"} <= messages
    # SQLAlchemy runs the repositories' queries in greenlets: the id follows.
    assert any(r["logger"].startswith("sqlalchemy.engine") for r in mine)
    for record in logs.records():
        if record["logger"].startswith(("sqlalchemy", "authserver.services")):
            assert record["request_id"] == request_id


async def test_access_line_for_a_token_request(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)

    with capture_logs() as logs:
        ok = await password_grant(api, client, user.username)
        bad = await password_grant(api, client, user.username, password="wrong-pw!")

    assert ok.status_code == 200 and bad.status_code == 400
    first, second = logs.named("http_request")
    assert first["logger"] == "authserver.access"
    assert first["level"] == "INFO"
    assert first["method"] == "POST"
    assert first["path"] == first["route"] == "/oauth2/token"
    assert first["status"] == 200
    assert first["client_id"] == client.client_id
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert first["request_id"] == ok.headers["x-request-id"]
    assert second["status"] == 400 and second["error"] == "invalid_grant"


async def test_access_line_drops_the_query_string(api):
    with capture_logs() as logs:
        await api.get(f"{JWKS}?access_token=should-not-be-logged")

    (line,) = logs.named("http_request")
    assert line["path"] == JWKS
    assert "should-not-be-logged" not in logs.text


async def test_unknown_paths_share_one_route_label(api):
    with capture_logs() as logs:
        response = await api.get("/no/such/path/12345")

    assert response.status_code == 404
    (line,) = logs.named("http_request")
    assert line["route"] == "unmatched"
    assert response.headers["x-request-id"] == line["request_id"]


async def test_a_413_before_the_app_is_logged_with_an_id(api):
    with capture_logs() as logs:
        response = await api.post(
            "/oauth2/token",
            content=b"x" * 100_000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    assert response.status_code == 413
    (line,) = logs.named("http_request")
    assert line["status"] == 413 and line["error"] == "invalid_request"
    assert response.headers["x-request-id"] == line["request_id"]


async def test_an_unhandled_error_keeps_its_request_id_in_the_log(settings):
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://x") as http:
        with capture_logs() as logs:
            response = await http.get("/boom", headers={"X-Request-ID": "boom-1"})

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    (access,) = logs.named("http_request")
    assert access["status"] == 500 and access["level"] == "WARNING"
    (error,) = logs.named("unhandled_error")
    assert access["request_id"] == error["request_id"] == "boom-1"
    assert "kaboom" in error["exc_info"]
