"""What a client registration may hold (ClientCreate: the CLI and the factories)."""

import pytest
from pydantic import ValidationError

from authserver.schemas.client import ClientCreate
from authserver.schemas.token import MAX_SCOPE

VALID = {
    "client_id": "billing",
    "name": "Billing service",
    "grant_types": ["client_credentials"],
    "scopes": ["reports"],
}

REFUSED = {
    "uuid-client-id": {"client_id": "0b5c2f0e-3d9a-4c8e-9f1a-2b7d6e5c4a39"},
    "refresh-without-a-user-grant": {"grant_types": ["refresh_token"]},
    "scopes-too-long-together": {
        "scopes": [f"s{i:04d}" + "x" * 45 for i in range(MAX_SCOPE // 50 + 1)]
    },
    "blank-name": {"name": "   "},
    "name-with-newline": {"name": "line1\nline2"},
    "name-with-escape": {"name": "bad\x1b[31m"},
}


@pytest.mark.parametrize("changes", list(REFUSED.values()), ids=list(REFUSED))
def test_refused(changes):
    with pytest.raises(ValidationError) as caught:
        ClientCreate(**{**VALID, **changes})

    assert caught.value.errors()[0]["loc"] == (next(iter(changes)),)


def test_accepted_values_are_normalised():
    client = ClientCreate(
        **{
            **VALID,
            "name": "  Billing  ",
            "grant_types": ["refresh_token", "password", "password"],
            "scopes": ["a", "b", "a"],
        }
    )

    assert client.name == "Billing"
    assert client.grant_types == ["password", "refresh_token"]
    assert client.scopes == ["a", "b"]


def test_scopes_that_just_fit_are_accepted():
    scopes = [f"s{i:03d}" + "x" * 95 for i in range(10)]  # 10 x 99 + 9 spaces
    assert len(" ".join(scopes)) <= MAX_SCOPE

    assert ClientCreate(**{**VALID, "scopes": scopes}).scopes == scopes


CODE_CLIENT = {**VALID, "grant_types": ["authorization_code", "refresh_token"]}
REGISTRABLE = [
    "https://app.example.com/callback",
    "https://app.example.com:8443/cb?tenant=7",
    "http://localhost/cb",
    "http://127.0.0.1:53117/callback",
    "http://[::1]:8080/cb",
    "com.example.app:/oauth2redirect",
]
UNREGISTRABLE = {
    "plain-http": "http://app.example.com/cb",
    "http-lookalike-loopback": "http://localhost.evil.example/cb",
    "fragment": "https://app.example.com/cb#x",
    "userinfo": "https://user@app.example.com/cb",
    "wildcard": "https://*.example.com/cb",
    "relative": "/cb",
    "space": "https://app.example.com/a b",
    "non-ascii": "https://app.example.com/ü",
    "javascript": "javascript:alert(1)",
    "data": "data:text/html,hi",
    "file": "file:///etc/passwd",
    "bare-custom-scheme": "myapp:/cb",
    "custom-scheme-with-host": "com.example.app://host/cb",
    "bad-port": "https://app.example.com:99999/cb",
    "no-host": "https:///cb",
    "too-long": "https://app.example.com/" + "a" * 2048,
}


@pytest.mark.parametrize("uri", REGISTRABLE)
def test_registrable_redirect_uris(uri):
    client = ClientCreate(**{**CODE_CLIENT, "redirect_uris": [uri, uri]})
    assert client.redirect_uris == [uri]  # exact, deduplicated, not normalised


@pytest.mark.parametrize("uri", list(UNREGISTRABLE.values()), ids=list(UNREGISTRABLE))
def test_unregistrable_redirect_uris(uri):
    for field in ("redirect_uris", "post_logout_redirect_uris"):
        with pytest.raises(ValidationError):
            ClientCreate(
                **{**CODE_CLIENT, "redirect_uris": [REGISTRABLE[0]], field: [uri]}
            )


def test_code_flow_needs_a_redirect_uri():
    with pytest.raises(ValidationError, match="needs at least one redirect URI"):
        ClientCreate(**CODE_CLIENT)
