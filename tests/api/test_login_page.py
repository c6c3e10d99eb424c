"""The hosted login page: CSRF bound to the pending request, the password
grant's lockout and uniform refusal, no trust in what the form says."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from authserver.models import AuthorizationRequest
from tests.factories import CALLBACK, DEFAULT_PASSWORD, make_code_client, make_user
from tests.oauth_flow import authorize_params, hidden_fields, new_pkce, query_of

LOGIN = "/oauth2/login"
CSRF_COOKIE = "authserver_csrf"
SESSION_COOKIE = "authserver_session"


async def login_page(api, session_factory, **extra):
    client = await make_code_client(session_factory)
    params = authorize_params(client.client_id, CALLBACK, new_pkce(), **extra)
    page = await api.get("/oauth2/authorize", params=params)
    assert page.status_code == 200
    return page, params


CSRF_CASES = {
    "csrf-missing": {"csrf_token": None},
    "csrf-wrong": {"csrf_token": "A" * 43},
    "csrf-cookie-missing": {"_cookie": None},
    "csrf-cookie-other": {"_cookie": "B" * 43},
    "request-unknown": {"request": "C" * 43},
    "request-missing": {"request": None},
}


@pytest.mark.parametrize("change", list(CSRF_CASES.values()), ids=list(CSRF_CASES))
async def test_login_post_without_the_page_token_is_refused(
    api, session_factory, change
):
    user = await make_user(session_factory)
    page, _ = await login_page(api, session_factory)
    form = {**hidden_fields(page.text), "username": user.username}
    form["password"] = DEFAULT_PASSWORD
    for name, value in change.items():
        if name == "_cookie":
            api.cookies.delete(CSRF_COOKIE)
            if value is not None:
                api.cookies.set(CSRF_COOKIE, value)
            continue
        form.pop(name)
        if value is not None:
            form[name] = value
    answer = await api.post(LOGIN, data=form)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    assert 'role="alert"' in answer.text


REFUSED_LOGINS = {
    "wrong-password": ("known", "not the password"),
    "unknown-user": ("nobody-by-this-name", DEFAULT_PASSWORD),
    "disabled-user": ("disabled", DEFAULT_PASSWORD),
    "over-long-password": ("known", "x" * 1025),
    "over-long-username": ("u" * 151, DEFAULT_PASSWORD),
}


@pytest.mark.parametrize(
    ("who", "password"), list(REFUSED_LOGINS.values()), ids=list(REFUSED_LOGINS)
)
async def test_refused_logins_read_the_same(api, session_factory, who, password):
    known = await make_user(session_factory)
    disabled = await make_user(session_factory, is_active=False)
    username = {"known": known.username, "disabled": disabled.username}.get(who, who)
    page, _ = await login_page(api, session_factory)
    form = {**hidden_fields(page.text), "username": username, "password": password}
    answer = await api.post(LOGIN, data=form)
    assert answer.status_code == 400
    assert "Incorrect username or password." in answer.text
    assert 'role="alert"' in answer.text
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    # The same page again, still usable: the request and its token live on.
    assert hidden_fields(answer.text) == hidden_fields(page.text)


async def test_lockout_is_shared_with_the_password_grant(
    api, session_factory, settings
):
    user = await make_user(session_factory)
    page, _ = await login_page(api, session_factory)
    fields = hidden_fields(page.text)
    for _ in range(settings.lockout_threshold):
        wrong = {**fields, "username": user.username, "password": "wrong guess"}
        assert (await api.post(LOGIN, data=wrong)).status_code == 400
    right = {**fields, "username": user.username, "password": DEFAULT_PASSWORD}
    answer = await api.post(LOGIN, data=right)
    assert answer.status_code == 400
    assert "Incorrect username or password." in answer.text


async def test_empty_fields_ask_for_both(api, session_factory):
    page, _ = await login_page(api, session_factory)
    answer = await api.post(LOGIN, data={**hidden_fields(page.text), "username": "x"})
    assert answer.status_code == 400
    assert "Enter your username and password." in answer.text


async def test_login_hint_prefills_the_username(api, session_factory):
    page, _ = await login_page(api, session_factory, login_hint="ada@example")
    assert 'value="ada@example"' in page.text


async def test_page_can_be_shown_again_with_a_new_token(api, session_factory):
    user = await make_user(session_factory)
    page, params = await login_page(api, session_factory)
    first = hidden_fields(page.text)
    again = await api.get(LOGIN, params={"request": first["request"]})
    assert again.status_code == 200
    second = hidden_fields(again.text)
    assert second["request"] == first["request"]
    assert second["csrf_token"] != first["csrf_token"]
    stale = {**first, "username": user.username, "password": DEFAULT_PASSWORD}
    assert (await api.post(LOGIN, data=stale)).status_code == 400
    fresh = {**second, "username": user.username, "password": DEFAULT_PASSWORD}
    answer = await api.post(LOGIN, data=fresh)
    assert answer.status_code == 303
    assert query_of(answer.headers["location"])["state"] == params["state"]


async def test_pending_request_expires(api, session_factory):
    user = await make_user(session_factory)
    page, _ = await login_page(api, session_factory)
    fields = hidden_fields(page.text)
    async with session_factory() as session:
        await session.execute(
            update(AuthorizationRequest)
            .where(AuthorizationRequest.id == fields["request"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    form = {**fields, "username": user.username, "password": DEFAULT_PASSWORD}
    answer = await api.post(LOGIN, data=form)
    assert answer.status_code == 400
    assert "expired" in answer.text


async def test_a_pending_request_completes_once(api, session_factory):
    user = await make_user(session_factory)
    page, _ = await login_page(api, session_factory)
    form = {**hidden_fields(page.text), "username": user.username}
    form["password"] = DEFAULT_PASSWORD
    assert (await api.post(LOGIN, data=form)).status_code == 303
    replay = await api.post(LOGIN, data=form)
    assert replay.status_code == 400
    assert "location" not in replay.headers
