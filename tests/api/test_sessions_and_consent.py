"""Sessions (SSO, prompt, max_age, ended by user changes) and consent for
third-party clients (asked once per scope set, prompt=consent, denial)."""

import jwt as pyjwt
import pytest

from authserver.schemas.account import PasswordSet
from tests.factories import (
    CALLBACK,
    DEFAULT_PASSWORD,
    make_code_client,
    make_user,
    user_service,
)
from tests.oauth_flow import (
    authorize_params,
    hidden_fields,
    new_pkce,
    query_of,
    sign_in,
)

AUTHORIZE = "/oauth2/authorize"


async def signed_in(api, session_factory, **client_options):
    client = await make_code_client(session_factory, **client_options)
    user = await make_user(session_factory)
    params = authorize_params(client.client_id, CALLBACK, new_pkce())
    answer = await sign_in(api, params, user.username, DEFAULT_PASSWORD)
    return client, user, answer


async def test_a_session_signs_in_without_the_page(api, session_factory):
    client, _, first = await signed_in(api, session_factory)
    assert first.status_code == 303
    for extra in ({}, {"prompt": "none"}, {"max_age": "3600"}):
        params = authorize_params(client.client_id, CALLBACK, new_pkce(), **extra)
        answer = await api.get(AUTHORIZE, params=params)
        assert answer.status_code == 302, extra
        query = query_of(answer.headers["location"])
        assert "code" in query and query["state"] == params["state"]


@pytest.mark.parametrize("extra", [{"prompt": "login"}, {"max_age": "0"}])
async def test_prompt_login_and_max_age_ask_again(api, session_factory, extra):
    client, _, _ = await signed_in(api, session_factory)
    params = authorize_params(client.client_id, CALLBACK, new_pkce(), **extra)
    answer = await api.get(AUTHORIZE, params=params)
    assert answer.status_code == 200
    assert 'name="password"' in answer.text


async def test_auth_time_and_sid_come_from_the_session(api, session_factory):
    client = await make_code_client(session_factory)
    user = await make_user(session_factory)

    async def id_claims(answer, pkce):
        tokens = await api.post(
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": query_of(answer.headers["location"])["code"],
                "redirect_uri": CALLBACK,
                "code_verifier": pkce.verifier,
                **client.form(),
            },
        )
        id_token = tokens.json()["id_token"]
        return pyjwt.decode(id_token, options={"verify_signature": False})

    first_pkce, second_pkce = new_pkce(), new_pkce()
    params = authorize_params(client.client_id, CALLBACK, first_pkce)
    first = await sign_in(api, params, user.username, DEFAULT_PASSWORD)
    params = authorize_params(client.client_id, CALLBACK, second_pkce, prompt="none")
    second = await api.get(AUTHORIZE, params=params)
    login, silent = await id_claims(first, first_pkce), await id_claims(
        second, second_pkce
    )
    assert silent["sid"] == login["sid"]
    assert silent["auth_time"] == login["auth_time"]


@pytest.mark.parametrize("change", ["disable", "password", "delete"])
async def test_user_changes_end_the_session(api, session_factory, change):
    client, user, _ = await signed_in(api, session_factory)
    async with session_factory() as session:
        service = user_service(session)
        target = await service.resolve(str(user.id))
        if change == "disable":
            await service.set_active(target, False)
        elif change == "password":
            await service.set_password(target, PasswordSet(password="another pass 42"))
        else:
            await service.delete(target)
        await session.commit()
    params = authorize_params(client.client_id, CALLBACK, new_pkce(), prompt="none")
    answer = await api.get(AUTHORIZE, params=params)
    assert query_of(answer.headers["location"])["error"] == "login_required"


async def consent_page(api, session_factory, **extra):
    client = await make_code_client(session_factory, is_third_party=True)
    user = await make_user(session_factory)
    params = authorize_params(client.client_id, CALLBACK, new_pkce(), **extra)
    page = await sign_in(api, params, user.username, DEFAULT_PASSWORD)
    assert page.status_code == 200
    assert "Allow access?" in page.text
    return client, user, page, params


async def decide(api, page, decision):
    return await api.post(
        "/oauth2/consent", data={**hidden_fields(page.text), "decision": decision}
    )


async def test_third_party_consent_is_asked_once(api, session_factory):
    client, _, page, params = await consent_page(api, session_factory)
    assert "Confirm who you are" in page.text
    allowed = await decide(api, page, "allow")
    assert allowed.status_code == 303
    assert "code" in query_of(allowed.headers["location"])
    again = authorize_params(client.client_id, CALLBACK, new_pkce(), prompt="none")
    answer = await api.get(AUTHORIZE, params=again)
    assert "code" in query_of(answer.headers["location"])
    # More scopes than were granted: asked again (and prompt=none cannot ask).
    more = authorize_params(
        client.client_id, CALLBACK, new_pkce(), prompt="none", scope="openid email"
    )
    answer = await api.get(AUTHORIZE, params=more)
    assert query_of(answer.headers["location"])["error"] == "consent_required"
    forced = authorize_params(client.client_id, CALLBACK, new_pkce(), prompt="consent")
    assert "Allow access?" in (await api.get(AUTHORIZE, params=forced)).text


async def test_denied_consent_is_access_denied(api, session_factory):
    _, _, page, params = await consent_page(api, session_factory)
    denied = await decide(api, page, "deny")
    assert denied.status_code == 303
    query = query_of(denied.headers["location"])
    assert query["error"] == "access_denied"
    assert query["state"] == params["state"]
    assert "code" not in query


async def test_a_denied_consent_cannot_be_answered_again(api, session_factory):
    _, _, page, _ = await consent_page(api, session_factory)
    denied = await decide(api, page, "deny")
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    # The answer used the pending request up, though it ended in an error.
    replay = await decide(api, page, "allow")
    assert replay.status_code == 400
    assert "location" not in replay.headers
    assert "expired" in replay.text


async def test_a_sign_in_stays_when_the_request_fails_back(api, session_factory):
    """Right password, but a scope this user may not hold: the client gets the
    error, and the browser is signed in all the same."""
    client = await make_code_client(
        session_factory, scopes=("openid", "profile", "admin")
    )
    user = await make_user(session_factory)
    params = authorize_params(
        client.client_id, CALLBACK, new_pkce(), scope="openid admin"
    )
    failed = await sign_in(api, params, user.username, DEFAULT_PASSWORD)
    assert failed.status_code == 303
    assert query_of(failed.headers["location"])["error"] == "invalid_scope"
    again = authorize_params(client.client_id, CALLBACK, new_pkce(), prompt="none")
    answer = await api.get(AUTHORIZE, params=again)
    assert "code" in query_of(answer.headers["location"])


async def test_consent_needs_the_page_token_and_the_session(api, session_factory):
    _, _, page, _ = await consent_page(api, session_factory)
    fields = hidden_fields(page.text)
    wrong = await api.post(
        "/oauth2/consent",
        data={**fields, "csrf_token": "x" * 43, "decision": "allow"},
    )
    assert wrong.status_code == 400 and "location" not in wrong.headers
    api.cookies.delete("authserver_session")
    no_session = await api.post("/oauth2/consent", data={**fields, "decision": "allow"})
    assert no_session.status_code == 400 and "location" not in no_session.headers


async def test_first_party_clients_skip_consent(api, session_factory):
    _, _, answer = await signed_in(api, session_factory, is_third_party=False)
    assert answer.status_code == 303
    assert "code" in query_of(answer.headers["location"])
