"""grant_type=authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.6): a code is
single use, short-lived, bound to its client, redirect URI and PKCE challenge;
a replayed code revokes what it issued (§4.1.2)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from authserver.crud.login_session import LoginSessionRepository
from authserver.crud.token_family import TokenFamilyRepository
from authserver.schemas.account import PasswordSet
from tests.api.helpers import (
    assert_oauth_error,
    refresh_grant,
    tokens,
    unverified,
)
from tests.factories import (
    CALLBACK,
    DEFAULT_PASSWORD,
    demote,
    make_client,
    make_code_client,
    make_user,
    user_service,
)
from tests.oauth_flow import (
    authorize_params,
    code_form,
    issued_code,
    new_pkce,
    query_of,
    sign_in,
)

TOKEN = "/oauth2/token"
OTHER_CALLBACK = "https://app.example.com/other"


def redeem_form(client, code, pkce, changes=None):
    form = code_form(client, code, pkce)
    for name, value in (changes or {}).items():
        form.pop(name)
        if value is not None:
            form[name] = value
    return form


REJECTIONS = {
    "no-code": ({"code": None}, "invalid_request"),
    "no-verifier": ({"code_verifier": None}, "invalid_request"),
    "no-redirect-uri": ({"redirect_uri": None}, "invalid_request"),
    "wrong-verifier": ({"code_verifier": "x" * 64}, "invalid_grant"),
    "short-verifier": ({"code_verifier": "abc"}, "invalid_grant"),
    "other-redirect-uri": ({"redirect_uri": OTHER_CALLBACK}, "invalid_grant"),
    "unknown-code": ({"code": "not-a-code-we-issued"}, "invalid_grant"),
}


@pytest.mark.parametrize(
    ("changes", "error"), list(REJECTIONS.values()), ids=list(REJECTIONS)
)
async def test_redemption_rejects(api, session_factory, changes, error):
    client = await make_code_client(
        session_factory, redirect_uris=(CALLBACK, OTHER_CALLBACK)
    )
    code, pkce, _ = await issued_code(api, session_factory, client)
    answer = await api.post(TOKEN, data=redeem_form(client, code, pkce, changes))
    assert answer.status_code == 400
    assert answer.json()["error"] == error
    assert answer.headers["cache-control"] == "no-store"
    # A refusal does not burn the code: the real client can still redeem it.
    assert (
        await api.post(TOKEN, data=redeem_form(client, code, pkce))
    ).status_code == 200


async def test_code_of_another_client_is_refused(api, session_factory):
    client = await make_code_client(session_factory)
    other = await make_code_client(session_factory)
    code, pkce, _ = await issued_code(api, session_factory, client)
    answer = await api.post(TOKEN, data=redeem_form(other, code, pkce))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_expired_code_is_refused(api, session_factory, clock, settings):
    client = await make_code_client(session_factory)
    code, pkce, _ = await issued_code(api, session_factory, client)
    clock(settings.authorization_code_ttl + timedelta(seconds=1))
    answer = await api.post(TOKEN, data=redeem_form(client, code, pkce))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_replayed_code_revokes_what_it_issued(api, session_factory):
    client = await make_code_client(session_factory, public=False)
    code, pkce, _ = await issued_code(api, session_factory, client)
    first = await api.post(TOKEN, data=redeem_form(client, code, pkce))
    assert first.status_code == 200
    tokens = first.json()

    replay = await api.post(TOKEN, data=redeem_form(client, code, pkce))
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"

    refresh = await api.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=client.basic_auth,
    )
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"
    for token in (tokens["access_token"], tokens["refresh_token"]):
        answer = await api.post(
            "/oauth2/introspect", data={"token": token}, auth=client.basic_auth
        )
        assert answer.json() == {"active": False}


async def test_confidential_client_must_authenticate(api, session_factory):
    client = await make_code_client(session_factory, public=False)
    code, pkce, _ = await issued_code(api, session_factory, client)
    form = redeem_form(client, code, pkce, {"client_secret": "wrong-secret"})
    answer = await api.post(TOKEN, data=form)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert (
        await api.post(TOKEN, data=redeem_form(client, code, pkce))
    ).status_code == 200


async def test_client_without_refresh_grant_gets_no_refresh_token(api, session_factory):
    client = await make_code_client(
        session_factory, grant_types=("authorization_code",)
    )
    code, pkce, _ = await issued_code(api, session_factory, client)
    answer = await api.post(TOKEN, data=redeem_form(client, code, pkce))
    assert answer.status_code == 200
    assert "refresh_token" not in answer.json()


async def test_password_client_may_not_redeem_codes(api, session_factory):
    client = await make_code_client(session_factory)
    code, pkce, _ = await issued_code(api, session_factory, client)
    password_only = await make_client(session_factory, public=True)
    form = redeem_form(client, code, pkce, {"client_id": password_only.client_id})
    answer = await api.post(TOKEN, data=form)
    assert answer.json()["error"] == "unauthorized_client"


async def test_code_dies_with_the_users_password(api, session_factory):
    client = await make_code_client(session_factory)
    code, pkce, user = await issued_code(api, session_factory, client)
    async with session_factory() as session:
        service = user_service(session)
        await service.set_password(
            await service.resolve(str(user.id)), PasswordSet(password="a new pass 123")
        )
        await session.commit()
    answer = await api.post(TOKEN, data=redeem_form(client, code, pkce))
    assert answer.json()["error"] == "invalid_grant"


async def test_a_code_outstanding_at_logout_is_refused(api, session_factory):
    client = await make_code_client(session_factory)
    code, pkce, _ = await issued_code(api, session_factory, client)
    first = tokens(await api.post(TOKEN, data=redeem_form(client, code, pkce)))
    # The browser, still signed in, gets a second code without a page...
    later = new_pkce()
    params = authorize_params(client.client_id, CALLBACK, later, prompt="none")
    silent = await api.get("/oauth2/authorize", params=params)
    second = query_of(silent.headers["location"])["code"]
    # ...and signs out before the app exchanges it.
    logout = await api.get(
        "/oauth2/logout", params={"id_token_hint": first["id_token"]}
    )
    assert logout.status_code == 200 and "You're signed out" in logout.text

    refused = await api.post(TOKEN, data=redeem_form(client, second, later))
    assert_oauth_error(refused, 400, "invalid_grant")


async def test_refreshed_id_tokens_keep_the_sign_ins_session(
    api, session_factory, clock
):
    """OIDC Core §12.2: the ID token of a refresh has the original iss, sub,
    aud, auth_time (and sid), its own iat, and no nonce; on the path that
    rotates from the token's claims and on the one that reads its record (an
    admin demoted since)."""
    client = await make_code_client(
        session_factory, scopes=("openid", "profile", "admin")
    )
    user = await make_user(session_factory, is_admin=True)
    pkce = new_pkce()
    scope = "openid profile admin"
    params = authorize_params(client.client_id, CALLBACK, pkce, scope=scope)
    answer = await sign_in(api, params, user.username, DEFAULT_PASSWORD)
    code = query_of(answer.headers["location"])["code"]
    first = tokens(await api.post(TOKEN, data=redeem_form(client, code, pkce)))
    _, original = unverified(first["id_token"])
    assert original["nonce"] == params["nonce"]
    family_id = uuid.UUID(unverified(first["access_token"])[1]["sid"])
    async with session_factory() as session:
        [login] = await LoginSessionRepository(session).list(
            now=datetime.now(UTC), user_id=user.id
        )
        family = await TokenFamilyRepository(session).get(family_id)
    assert family is not None
    assert original["sid"] == str(login.id) == str(family.session_id)

    clock(timedelta(seconds=5))
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))
    await demote(session_factory, user.username)
    third = tokens(await refresh_grant(api, client, second["refresh_token"]))

    assert (second["scope"], third["scope"]) == (scope, "openid profile")
    for body in (second, third):
        _, claims = unverified(body["id_token"])
        assert "nonce" not in claims
        for name in ("iss", "sub", "aud", "auth_time", "sid"):
            assert claims[name] == original[name], name
        assert claims["iat"] >= original["iat"] + 5
