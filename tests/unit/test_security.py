"""JWT verification rules, client-secret hashing, sealed retry answers, passwords."""

import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from authserver.core.exceptions import TokenError
from authserver.core.security import (
    hash_client_secret,
    make_password_context,
    seal,
    sign_jwt,
    unseal,
    verify_client_secret,
    verify_jwt,
    verify_password,
)

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
KEYS = KeySet([KEY])
NOW = int(time.time())
CLAIMS = {
    "iss": "https://as",
    "aud": "api",
    "sub": "u",
    "iat": NOW,
    "exp": NOW + 60,
    "jti": "j",
}


def verify(token: str, **overrides):
    options = {"typ": "at+jwt", "issuer": "https://as", "audience": "api", "now": NOW}
    return verify_jwt(token, KEYS, **{**options, **overrides})


def test_valid_token_verifies():
    assert verify(sign_jwt(KEY, CLAIMS, typ="at+jwt"))["sub"] == "u"


REJECTED = {
    "wrong-typ": (lambda: sign_jwt(KEY, CLAIMS, typ="rt+jwt"), {}),
    "wrong-issuer": (
        lambda: sign_jwt(KEY, {**CLAIMS, "iss": "https://evil"}, typ="at+jwt"),
        {},
    ),
    "wrong-audience": (
        lambda: sign_jwt(KEY, CLAIMS, typ="at+jwt"),
        {"audience": "other"},
    ),
    "expired": (lambda: sign_jwt(KEY, {**CLAIMS, "exp": NOW - 1}, typ="at+jwt"), {}),
    "no-jti": (
        lambda: sign_jwt(
            KEY, {k: v for k, v in CLAIMS.items() if k != "jti"}, typ="at+jwt"
        ),
        {},
    ),
    "no-kid": (
        lambda: jwt.encode(
            {"alg": "RS256", "typ": "at+jwt"}, CLAIMS, KEY, algorithms=["RS256"]
        ),
        {},
    ),
    "unknown-kid": (
        lambda: sign_jwt(
            RSAKey.generate_key(2048, parameters={"kid": "k2"}), CLAIMS, typ="at+jwt"
        ),
        {},
    ),
    "tampered": (lambda: sign_jwt(KEY, CLAIMS, typ="at+jwt")[:-4] + "AAAA", {}),
}


@pytest.mark.parametrize(
    ("make", "overrides"), list(REJECTED.values()), ids=list(REJECTED)
)
def test_verification_rejects(make, overrides):
    with pytest.raises(TokenError):
        verify(make(), **overrides)


def test_client_secret_hash_round_trip():
    stored = hash_client_secret("s3cret")

    assert verify_client_secret("s3cret", stored)
    assert not verify_client_secret("s3creT", stored)
    assert not verify_client_secret("s3cret", "garbage")
    assert "s3cret" not in stored


def test_client_secret_hash_of_another_scheme_never_verifies():
    _, salt, digest = hash_client_secret("s3cret").split("$")

    assert not verify_client_secret("s3cret", f"md5${salt}${digest}")
    assert not verify_client_secret("s3cret", f"x${salt}$!!")


def test_sealed_answer_opens_only_with_the_token_it_was_sealed_under():
    blob = seal("refresh-token-A", "jti-1", {"access_token": "x"})

    assert unseal("refresh-token-A", "jti-1", blob) == {"access_token": "x"}
    assert unseal("refresh-token-B", "jti-1", blob) is None
    assert unseal("refresh-token-A", "jti-2", blob) is None
    assert b"access_token" not in blob


def test_long_passwords_are_not_truncated():
    context = make_password_context(4)
    long_password = "x" * 100
    stored = context.hash(long_password)

    assert verify_password(context, long_password, stored) == (True, None)
    assert verify_password(context, "x" * 72, stored)[0] is False


def test_malformed_stored_hash_is_a_failed_login():
    assert verify_password(make_password_context(4), "pw", "not-a-hash") == (
        False,
        None,
    )
