"""The browser side of the authorization code flow, for tests: PKCE values,
the hidden fields of a served page, signing in through the login form; and
the client's side: redeeming the code."""

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

from tests.factories import CALLBACK, DEFAULT_PASSWORD, TestClient, make_user

HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str


def new_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def hidden_fields(html: str) -> dict[str, str]:
    return dict(HIDDEN.findall(html))


def query_of(location: str) -> dict[str, str]:
    return {
        name: values[0] for name, values in parse_qs(urlsplit(location).query).items()
    }


def authorize_params(
    client_id: str, redirect_uri: str, pkce: Pkce, **extra: str
) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile",
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def submit_login(
    http: httpx2.AsyncClient, page: httpx2.Response, username: str, password: str
) -> httpx2.Response:
    """Post the login form of `page` as a browser would."""
    fields = hidden_fields(page.text)
    return await http.post(
        "/oauth2/login", data={**fields, "username": username, "password": password}
    )


async def sign_in(
    http: httpx2.AsyncClient, params: dict[str, str], username: str, password: str
) -> httpx2.Response:
    """GET /authorize, then the login form: the response that follows it."""
    page = await http.get("/oauth2/authorize", params=params)
    assert page.status_code == 200, page.text
    return await submit_login(http, page, username, password)


async def issued_code(
    http: httpx2.AsyncClient, session_factory: Any, client: TestClient, **extra: str
) -> tuple[str, Pkce, Any]:
    """A new user signs in for `client` (at CALLBACK): the code, its PKCE pair
    and the user."""
    user = await make_user(session_factory)
    pkce = new_pkce()
    params = authorize_params(client.client_id, CALLBACK, pkce, **extra)
    answer = await sign_in(http, params, user.username, DEFAULT_PASSWORD)
    assert answer.status_code == 303, answer.text
    return query_of(answer.headers["location"])["code"], pkce, user


def code_form(
    client: TestClient, code: str, pkce: Pkce, redirect_uri: str = CALLBACK
) -> dict[str, str]:
    """The token request that redeems `code`."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": pkce.verifier,
        **client.form(),
    }
