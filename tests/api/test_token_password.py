"""Password grant (RFC 6749 §4.3) through the in-process app."""

import base64
import json
from urllib.parse import quote_plus

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from authserver.core.security import make_password_context
from authserver.crud.user import UserRepository
from tests.api.helpers import TOKEN_URL, assert_oauth_error, password_grant, tokens
from tests.factories import DEFAULT_PASSWORD, make_client, make_user


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def header_of(token: str) -> dict:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


async def test_password_grant_issues_rfc9068_access_token(api, session_factory, app):
    client = await make_client(session_factory, scopes=("profile", "email"))
    user = await make_user(session_factory, username="Alice")

    body = tokens(await password_grant(api, client, "alice", scope="profile"))

    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == "profile"
    assert "id_token" not in body
    header = header_of(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256" and header["kid"]
    keys = KeySet.import_key_set(
        json.loads((await api.get("/.well-known/jwks.json")).text)
    )
    verified = jwt.decode(body["access_token"], keys, algorithms=["RS256"]).claims
    assert verified["sub"] == str(user.id)
    assert verified["iss"] == "http://localhost"
    assert verified["aud"] == "http://localhost"
    assert verified["client_id"] == client.client_id
    assert verified["scope"] == "profile"
    assert verified["exp"] - verified["iat"] == 900
    assert verified["jti"]
    assert header_of(body["refresh_token"])["typ"] == "rt+jwt"


async def test_openid_scope_adds_id_token(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)

    body = tokens(
        await password_grant(api, client, user.username, scope="openid email")
    )

    id_claims = claims_of(body["id_token"])
    assert id_claims["aud"] == client.client_id
    assert id_claims["sub"] == str(user.id)
    assert id_claims["iss"] == "http://localhost"
    assert {"iat", "exp", "auth_time"} <= id_claims.keys()


async def test_default_scope_is_the_clients(api, session_factory):
    client = await make_client(session_factory, scopes=("profile", "email"))
    user = await make_user(session_factory)

    body = tokens(await password_grant(api, client, user.username))

    assert body["scope"] == "profile email"


async def test_client_secret_post_and_public_client(api, session_factory):
    confidential = await make_client(session_factory)
    public = await make_client(session_factory, public=True)
    user = await make_user(session_factory)
    form = {
        "grant_type": "password",
        "username": user.username,
        "password": DEFAULT_PASSWORD,
    }

    by_post = await api.post(TOKEN_URL, data={**form, **confidential.form()})
    by_none = await api.post(TOKEN_URL, data={**form, **public.form()})

    assert tokens(by_post)["access_token"]
    assert tokens(by_none)["access_token"]


async def test_basic_credentials_are_form_urlencoded(api, session_factory):
    client = await make_client(session_factory, client_id="my~app.v2")
    user = await make_user(session_factory)
    raw = f"{quote_plus(client.client_id)}:{quote_plus(client.secret)}"
    header = "Basic " + base64.b64encode(raw.encode()).decode()
    data = {
        "grant_type": "password",
        "username": user.username,
        "password": DEFAULT_PASSWORD,
    }

    response = await api.post(TOKEN_URL, data=data, headers={"Authorization": header})

    assert tokens(response)["access_token"]


async def test_no_refresh_token_without_refresh_grant(api, session_factory):
    client = await make_client(session_factory, grant_types=("password",))
    user = await make_user(session_factory)

    body = tokens(await password_grant(api, client, user.username))

    assert "refresh_token" not in body


async def test_outdated_hash_is_upgraded_on_login(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    old_hash = (
        make_password_context(4)
        .handler("bcrypt")
        .using(rounds=4)
        .hash(DEFAULT_PASSWORD)
    )
    async with session_factory() as session:
        stored = await UserRepository(session).get(user.id)
        stored.password_hash = old_hash
        await session.commit()

    tokens(await password_grant(api, client, user.username))

    async with session_factory() as session:
        upgraded = await UserRepository(session).get(user.id)
    assert upgraded.password_hash.startswith("$bcrypt-sha256$")
    assert upgraded.password_changed_at == user.password_changed_at


async def test_admin_scope_needs_an_admin_user(api, session_factory):
    client = await make_client(session_factory, scopes=("profile", "admin"))
    admin = await make_user(session_factory, is_admin=True)
    plain = await make_user(session_factory)

    granted = tokens(await password_grant(api, client, admin.username, scope="admin"))
    refused = await password_grant(api, client, plain.username, scope="admin")
    defaulted = tokens(await password_grant(api, client, plain.username))

    assert granted["scope"] == "admin"
    assert_oauth_error(refused, 400, "invalid_scope")
    assert defaulted["scope"] == "profile"


PASSWORD_REJECTIONS = {
    "wrong-password": ({"password": "not the password"}, 400, "invalid_grant"),
    "unknown-user": ({"username": "nobody-here"}, 400, "invalid_grant"),
    "missing-password": ({"password": ""}, 400, "invalid_request"),
    "missing-username": ({"username": ""}, 400, "invalid_request"),
    "missing-grant-type": ({"grant_type": ""}, 400, "invalid_request"),
    "unknown-grant": ({"grant_type": "urn:x:nope"}, 400, "unsupported_grant_type"),
    "scope-not-allowed": ({"scope": "admin"}, 400, "invalid_scope"),
    "scope-malformed": ({"scope": 'bad"scope'}, 400, "invalid_scope"),
    "username-too-long": ({"username": "u" * 151}, 400, "invalid_request"),
    "password-1mb": ({"password": "p" * 1_000_000}, 413, "invalid_request"),
}


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    list(PASSWORD_REJECTIONS.values()),
    ids=list(PASSWORD_REJECTIONS),
)
async def test_password_grant_rejects(api, session_factory, overrides, status, error):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    form = {
        "grant_type": "password",
        "username": user.username,
        "password": DEFAULT_PASSWORD,
        **overrides,
    }

    response = await api.post(TOKEN_URL, data=form, auth=client.basic_auth)

    assert_oauth_error(response, status, error)


async def test_disabled_user_gets_invalid_grant(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory, is_active=False)

    response = await password_grant(api, client, user.username)

    assert_oauth_error(response, 400, "invalid_grant")
    assert response.json()["error_description"] == "invalid username or password"


async def test_grant_type_not_allowed_for_client(api, session_factory):
    client = await make_client(session_factory, grant_types=("client_credentials",))
    user = await make_user(session_factory)

    response = await password_grant(api, client, user.username)

    assert_oauth_error(response, 400, "unauthorized_client")


CLIENT_REJECTIONS = {
    "wrong-secret": {"auth": ("{cid}", "wrong")},
    "unknown-client": {"auth": ("nobody", "secret")},
    "no-credentials": {},
    "secret-in-body-wrong": {"data": {"client_id": "{cid}", "client_secret": "nope"}},
    "confidential-without-secret": {"data": {"client_id": "{cid}"}},
}


@pytest.mark.parametrize(
    "case", list(CLIENT_REJECTIONS.values()), ids=list(CLIENT_REJECTIONS)
)
async def test_client_authentication_failures(api, session_factory, case):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    form = {
        "grant_type": "password",
        "username": user.username,
        "password": DEFAULT_PASSWORD,
    }
    auth = None
    if "auth" in case:
        auth = tuple(part.format(cid=client.client_id) for part in case["auth"])
    extra = {k: v.format(cid=client.client_id) for k, v in case.get("data", {}).items()}

    response = await api.post(TOKEN_URL, data={**form, **extra}, auth=auth)

    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"] == 'Basic realm="authserver"'


@pytest.mark.parametrize("scheme", ["Bearer", "Digest"])
async def test_another_authorization_scheme_is_answered_with_the_basic_challenge(
    api, scheme
):
    response = await api.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"{scheme} abc"},
    )

    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"] == 'Basic realm="authserver"'


async def test_public_client_may_not_present_a_secret(api, session_factory):
    client = await make_client(session_factory, public=True)
    user = await make_user(session_factory)
    form = {
        "grant_type": "password",
        "username": user.username,
        "password": DEFAULT_PASSWORD,
        "client_id": client.client_id,
        "client_secret": "anything",
    }

    response = await api.post(TOKEN_URL, data=form)

    assert_oauth_error(response, 401, "invalid_client")


REQUEST_REJECTIONS = {
    "json-body": {"json": {"grant_type": "password"}},
    "multipart-body": {"files": {"grant_type": (None, "password")}},
    "repeated-parameter": {"content": b"grant_type=password&grant_type=password"},
    "two-auth-methods": {
        "content": b"grant_type=password&client_secret=x",
        "basic": True,
    },
}


@pytest.mark.parametrize(
    "kwargs", list(REQUEST_REJECTIONS.values()), ids=list(REQUEST_REJECTIONS)
)
async def test_malformed_requests_are_invalid_request(api, session_factory, kwargs):
    client = await make_client(session_factory)
    kwargs = dict(kwargs)
    headers = {}
    if "content" in kwargs:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    auth = client.basic_auth if kwargs.pop("basic", False) else None

    response = await api.post(TOKEN_URL, headers=headers, auth=auth, **kwargs)

    assert_oauth_error(response, 400, "invalid_request")


async def test_get_is_not_allowed(api):
    response = await api.get(TOKEN_URL)

    assert response.status_code == 405


async def test_body_over_the_limit_without_content_length(api, session_factory):
    async def chunks():
        for _ in range(100):
            yield b"x" * 1024

    response = await api.post(
        TOKEN_URL,
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert_oauth_error(response, 413, "invalid_request")
