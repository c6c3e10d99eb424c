"""Every API route that sets a password refuses what the one policy refuses."""

import json
from collections.abc import AsyncIterator

import httpx2
import pytest

from authserver.core.config import Settings
from authserver.main import create_app
from tests.api.helpers import ME_URL, USERS_URL, bearer, user_tokens
from tests.conftest import TEST_ISSUER
from tests.factories import DEFAULT_PASSWORD, make_client, make_user
from tests.password_policy import REFUSED

CASES = pytest.mark.parametrize(
    ("password", "message"), list(REFUSED.values()), ids=list(REFUSED)
)


async def post_json(http: httpx2.AsyncClient, url: str, body: dict, **kwargs):
    # json.dumps escapes a lone surrogate (\ud800): valid JSON, as a client sends it.
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return await http.post(
        url, content=json.dumps(body).encode(), headers=headers, **kwargs
    )


def assert_refused(response: httpx2.Response, field: str, message: str) -> None:
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["loc"][-1] == field
    assert error["msg"] == f"Value error, {message}"


@CASES
async def test_admin_routes_refuse(api, session_factory, password, message):
    client = await make_client(session_factory, scopes=("profile", "admin"))
    admin = await make_user(session_factory, is_admin=True)
    token = await user_tokens(api, client, admin.username, scope="admin profile")
    headers = bearer(token["access_token"])

    created = await post_json(
        api, USERS_URL, {"username": "newbie", "password": password}, headers=headers
    )
    reset = await post_json(
        api, f"{USERS_URL}/{admin.id}/password", {"password": password}, headers=headers
    )

    assert_refused(created, "password", message)
    assert_refused(reset, "password", message)


@CASES
async def test_own_change_refuses(api, session_factory, password, message):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    headers = bearer((await user_tokens(api, client, user.username))["access_token"])

    body = {"current_password": DEFAULT_PASSWORD, "new_password": password}
    changed = await post_json(api, f"{ME_URL}/password", body, headers=headers)

    assert_refused(changed, "new_password", message)


@pytest.fixture(scope="module")
async def open_app(settings: Settings) -> AsyncIterator[httpx2.AsyncClient]:
    app = create_app(settings.model_copy(update={"allow_self_registration": True}))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(
            transport=transport, base_url=TEST_ISSUER
        ) as http:
            yield http


@CASES
async def test_sign_up_refuses(open_app, clean_db, password, message):
    signed_up = await post_json(
        open_app, USERS_URL, {"username": "newbie", "password": password}
    )

    assert_refused(signed_up, "password", message)
