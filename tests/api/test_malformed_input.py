"""Malformed input gets a 4xx in the endpoint's own error shape, never a 500.

One table of hostile requests against the real app (on SQLite and PostgreSQL:
some inputs, a NUL byte say, only break the latter), and a JWT whose header is
JSON nested too deeply for the decoder, presented at every endpoint that reads
tokens.
"""

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from joserfc.jwk import KeySet, RSAKey

from authserver.core import security
from authserver.core.exceptions import TokenError
from tests import factories
from tests.api.helpers import (
    INTROSPECT_URL,
    ME_URL,
    REVOKE_URL,
    TOKEN_URL,
    USERINFO_URL,
    USERS_URL,
    assert_bearer_error,
    assert_oauth_error,
    bearer,
    user_tokens,
)
from tests.factories import make_client, make_user

FORM = "application/x-www-form-urlencoded"
# Deeper than the JSON decoder's recursion limit (1000), short enough to pass
# every length bound on tokens (4096 characters).
NESTING = 1200


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def nested_header_jwt(depth: int = NESTING) -> str:
    """A compact JWT whose header is `[[[...]]]`, `depth` arrays deep."""
    header = b"[" * depth + b"]" * depth
    return f"{b64url(header)}.{b64url(b'{}')}.{b64url(b'sig')}"


def basic(raw: bytes) -> dict[str, bytes]:
    """An Authorization header of Basic plus these exact bytes."""
    return {"Authorization": b"Basic " + raw}


def basic_of(credentials: bytes) -> dict[str, bytes]:
    return basic(base64.b64encode(credentials))


@dataclass
class Caller:
    """What the cases need: a confidential client, a user's and an admin's token."""

    client: factories.TestClient
    user_headers: dict[str, str]
    admin_headers: dict[str, str]

    def form(self, content: bytes, **headers: Any) -> dict[str, Any]:
        """A form body as bytes, authenticated by client_secret_basic."""
        return {
            "content": content,
            "headers": {"Content-Type": FORM, **headers},
            "auth": self.client.basic_auth,
        }

    def admin_json(self, content: bytes) -> dict[str, Any]:
        return {
            "content": content,
            "headers": {**self.admin_headers, "Content-Type": "application/json"},
        }


@pytest.fixture
async def caller(api, session_factory) -> Caller:
    scopes = ("openid", "profile", "email", "admin")
    client = await make_client(session_factory, scopes=scopes)
    user = await make_user(session_factory)
    admin = await make_user(session_factory, is_admin=True)
    user_body = await user_tokens(api, client, user.username, scope="openid profile")
    admin_body = await user_tokens(api, client, admin.username, scope="admin profile")
    return Caller(
        client, bearer(user_body["access_token"]), bearer(admin_body["access_token"])
    )


Request = Callable[[Caller], tuple[str, str, dict[str, Any]]]
CC = {"grant_type": "client_credentials"}
NESTED_JSON = b"[" * 5000 + b"]" * 5000
NESTED_OBJECT = b'{"a":' * 3000 + b"1" + b"}" * 3000


def post_with(url: str, data: dict[str, str], headers: dict[str, Any]) -> Request:
    """A form POST carrying these (client authentication) headers."""
    return lambda c: ("POST", url, {"data": data, "headers": headers})


def form_at(url: str, content: bytes) -> Request:
    """A urlencoded body, as these bytes, from the table's client."""
    return lambda c: ("POST", url, c.form(content))


def admin_get(url: str) -> Request:
    return lambda c: ("GET", url, {"headers": c.admin_headers})


def json_at(method: str, url: str, content: bytes, *, admin: bool = True) -> Request:
    """A JSON body, as these bytes, with the admin's (or the user's) token."""

    def build(c: Caller) -> tuple[str, str, dict[str, Any]]:
        auth = c.admin_headers if admin else c.user_headers
        headers = {**auth, "Content-Type": "application/json"}
        return method, url, {"content": content, "headers": headers}

    return build


def token_for_secret(secret: bytes) -> Request:
    """The table's own client_id with this secret, by HTTP Basic."""

    def build(c: Caller) -> tuple[str, str, dict[str, Any]]:
        credentials = c.client.client_id.encode() + b":" + secret
        return "POST", TOKEN_URL, {"data": CC, "headers": basic_of(credentials)}

    return build


BAD_REQUEST = (400, "invalid_request")
BAD_CLIENT = (401, "invalid_client")
BAD_INPUT = (422, "validation_error")
UNPARSABLE = (400, "invalid_request")

# id: (request, (status, error)). Statuses and codes are the endpoint's own:
# OAuth endpoints answer RFC 6749 §5.2 codes, the users API its documented ones.
CASES: dict[str, tuple[Request, tuple[int, str]]] = {
    # --- client authentication (HTTP Basic) ---
    "basic-non-ascii-bytes": (
        post_with(TOKEN_URL, CC, basic("éé".encode())),
        BAD_CLIENT,
    ),
    "basic-control-bytes": (post_with(TOKEN_URL, CC, basic(b"\x01\xff")), BAD_CLIENT),
    "basic-bad-base64": (post_with(TOKEN_URL, CC, basic(b"***")), BAD_CLIENT),
    "basic-nul-in-client-id": (
        post_with(TOKEN_URL, CC, basic_of(b"a\x00:x")),
        BAD_CLIENT,
    ),
    "basic-percent-nul-in-client-id": (
        post_with(TOKEN_URL, CC, basic_of(b"a%00:x")),
        BAD_CLIENT,
    ),
    "basic-percent-nul-in-secret": (token_for_secret(b"%00"), BAD_CLIENT),
    "basic-bad-percent-encoding": (
        post_with(TOKEN_URL, CC, basic_of(b"%ff:%fe")),
        BAD_CLIENT,
    ),
    "basic-non-utf8-credentials": (
        post_with(TOKEN_URL, CC, basic_of(b"\xff:\xfe")),
        BAD_CLIENT,
    ),
    "basic-at-revoke-nul": (
        post_with(REVOKE_URL, {"token": "x"}, basic_of(b"a%00:x")),
        BAD_CLIENT,
    ),
    "basic-at-introspect-non-ascii": (
        post_with(INTROSPECT_URL, {"token": "x"}, basic("é".encode())),
        BAD_CLIENT,
    ),
    # --- OAuth form bodies ---
    "form-nul-in-username": (
        form_at(TOKEN_URL, b"grant_type=password&username=a%00b&password=whatever1"),
        BAD_REQUEST,
    ),
    "form-nul-in-password": (
        form_at(TOKEN_URL, b"grant_type=password&username=someone&password=x%00y"),
        BAD_REQUEST,
    ),
    "form-nul-in-client-id-post": (
        lambda c: (
            "POST",
            TOKEN_URL,
            {
                "content": b"grant_type=client_credentials&client_id=a%00&client_secret=x",
                "headers": {"Content-Type": FORM},
            },
        ),
        BAD_REQUEST,
    ),
    "form-nul-in-parameter-name": (
        form_at(TOKEN_URL, b"grant_type=client_credentials&a%00=1"),
        BAD_REQUEST,
    ),
    "form-nul-in-revoke-token": (form_at(REVOKE_URL, b"token=abc%00def"), BAD_REQUEST),
    "form-nul-in-introspect-hint": (
        form_at(INTROSPECT_URL, b"token=abc&token_type_hint=%00"),
        BAD_REQUEST,
    ),
    "form-invalid-utf8": (form_at(TOKEN_URL, b"grant_type=\xff\xfe"), BAD_REQUEST),
    "form-invalid-utf8-percent-encoded": (
        form_at(TOKEN_URL, b"grant_type=%ff%fe"),
        BAD_REQUEST,
    ),
    "form-lone-surrogate-percent-encoded": (
        form_at(REVOKE_URL, b"token=%ED%A0%80"),
        BAD_REQUEST,
    ),
    "form-as-json": (
        lambda c: ("POST", TOKEN_URL, {"json": CC, "auth": c.client.basic_auth}),
        BAD_REQUEST,
    ),
    "form-as-multipart": (
        lambda c: (
            "POST",
            TOKEN_URL,
            {
                "files": {"grant_type": (None, "client_credentials")},
                "auth": c.client.basic_auth,
            },
        ),
        BAD_REQUEST,
    ),
    "form-odd-content-type": (
        lambda c: (
            "POST",
            INTROSPECT_URL,
            {
                "content": b"token=x",
                "headers": {"Content-Type": b"application/x-www-\xffform"},
                "auth": c.client.basic_auth,
            },
        ),
        BAD_REQUEST,
    ),
    # --- bearer tokens ---
    "bearer-non-ascii-bytes": (
        lambda c: ("GET", USERINFO_URL, {"headers": {"Authorization": b"Bearer \xff"}}),
        (401, "invalid_token"),
    ),
    "bearer-not-a-jwt": (
        lambda c: ("GET", ME_URL, {"headers": bearer("a.b.c")}),
        (401, "invalid_token"),
    ),
    # --- the users API (JSON) ---
    "users-nested-json-array": (json_at("POST", USERS_URL, NESTED_JSON), UNPARSABLE),
    "users-nested-json-object": (json_at("POST", USERS_URL, NESTED_OBJECT), UNPARSABLE),
    "users-me-nested-json": (
        json_at("PATCH", ME_URL, NESTED_JSON, admin=False),
        UNPARSABLE,
    ),
    "users-invalid-utf8-json": (
        json_at("POST", USERS_URL, b'{"username": "\xff"}'),
        UNPARSABLE,
    ),
    "users-number-too-long": (
        json_at(
            "POST", USERS_URL, b'{"username": "n", "is_admin": ' + b"9" * 5000 + b"}"
        ),
        UNPARSABLE,
    ),
    "users-not-json": (json_at("POST", USERS_URL, b"{nope"), BAD_INPUT),
    "users-nul-in-username": (
        json_at(
            "POST", USERS_URL, b'{"username": "a\\u0000b", "password": "long enough 1"}'
        ),
        BAD_INPUT,
    ),
    "users-page-offset-huge": (admin_get(f"{USERS_URL}?offset={'9' * 40}"), BAD_INPUT),
    "users-page-offset-too-many-digits": (
        admin_get(f"{USERS_URL}?offset={'9' * 5000}"),
        BAD_INPUT,
    ),
    "users-page-limit-negative": (admin_get(f"{USERS_URL}?limit=-1"), BAD_INPUT),
    "users-page-limit-float": (admin_get(f"{USERS_URL}?limit=1e3"), BAD_INPUT),
    "users-filter-nul": (admin_get(f"{USERS_URL}?email=%00"), BAD_INPUT),
    "users-id-not-a-uuid": (admin_get(f"{USERS_URL}/%00%ff"), BAD_INPUT),
}


def assert_error_shape(response: httpx2.Response, status: int, error: str) -> None:
    """The endpoint's documented error: status, code, description, no-store."""
    path = response.request.url.path
    if path.startswith("/oauth2/userinfo") or path.startswith(USERS_URL):
        if error in {"invalid_token", "insufficient_scope"}:
            assert_bearer_error(response, status, error)
            return
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error"] == error
        assert isinstance(body["error_description"], str)
        assert response.headers["cache-control"] == "no-store"
        return
    assert_oauth_error(response, status, error)
    if error == "invalid_client":
        assert response.headers["www-authenticate"] == 'Basic realm="authserver"'


@pytest.mark.parametrize(
    ("request_of", "expected"), list(CASES.values()), ids=list(CASES)
)
async def test_malformed_input_is_a_4xx(api, caller, request_of, expected):
    method, url, options = request_of(caller)

    response = await api.request(method, url, **options)

    assert_error_shape(response, *expected)


# id: (request with the token, status, error or None for a 200)
NESTED_JWT_AT: dict[str, tuple[Callable[[Caller, str], Any], int, str | None]] = {
    "token-refresh-grant": (
        lambda c, t: (
            "POST",
            TOKEN_URL,
            {
                "data": {"grant_type": "refresh_token", "refresh_token": t},
                "auth": c.client.basic_auth,
            },
        ),
        400,
        "invalid_grant",
    ),
    "revoke": (
        lambda c, t: (
            "POST",
            REVOKE_URL,
            {"data": {"token": t}, "auth": c.client.basic_auth},
        ),
        200,
        None,
    ),
    "revoke-hinted-access-token": (
        lambda c, t: (
            "POST",
            REVOKE_URL,
            {
                "data": {"token": t, "token_type_hint": "access_token"},
                "auth": c.client.basic_auth,
            },
        ),
        200,
        None,
    ),
    "introspect": (
        lambda c, t: (
            "POST",
            INTROSPECT_URL,
            {"data": {"token": t}, "auth": c.client.basic_auth},
        ),
        200,
        None,
    ),
    "userinfo-bearer": (
        lambda c, t: ("GET", USERINFO_URL, {"headers": bearer(t)}),
        401,
        "invalid_token",
    ),
    "users-me-bearer": (
        lambda c, t: ("GET", ME_URL, {"headers": bearer(t)}),
        401,
        "invalid_token",
    ),
    "users-admin-bearer": (
        lambda c, t: ("GET", USERS_URL, {"headers": bearer(t)}),
        401,
        "invalid_token",
    ),
}


@pytest.mark.parametrize(
    ("request_of", "status", "error"),
    list(NESTED_JWT_AT.values()),
    ids=list(NESTED_JWT_AT),
)
async def test_jwt_with_deeply_nested_header(api, caller, request_of, status, error):
    token = nested_header_jwt()
    assert len(token) < 4096  # within every token length bound: it reaches the parser
    method, url, options = request_of(caller, token)

    response = await api.request(method, url, **options)

    if error is None:
        # RFC 7009 §2.2 / RFC 7662 §2.2: an unusable token is no error there.
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        if url == INTROSPECT_URL:
            assert response.json() == {"active": False}
        return
    assert_error_shape(response, status, error)


def test_nested_header_is_a_token_error_not_a_recursion_error():
    """The JWT verifier survives the nesting itself: whatever the header's
    shape, the answer is a TokenError (a 4xx upstream), never a RecursionError."""
    token = nested_header_jwt()
    with pytest.raises(TokenError):
        security.verify_jwt(
            token,
            KeySet([RSAKey.generate_key(2048, parameters={"kid": "k"})]),
            typ="rt+jwt",
            issuer="http://localhost",
            audience=None,
            now=0,
        )


async def test_the_tables_credentials_are_good(api, caller):
    """The table's client and tokens work: its requests fail for the input alone."""
    me = await api.get(ME_URL, headers=caller.user_headers)
    users = await api.get(USERS_URL, headers=caller.admin_headers)
    token = await api.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": "nobody", "password": "x" * 9},
        auth=caller.client.basic_auth,
    )

    assert me.status_code == 200 and users.status_code == 200
    assert_oauth_error(token, 400, "invalid_grant")  # the client authenticated
