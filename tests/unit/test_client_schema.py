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
    "refresh-without-password": {"grant_types": ["refresh_token"]},
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
