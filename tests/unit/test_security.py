"""JWT verification rules, client-secret hashing, sealed retry answers, passwords."""

import math
import re
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
from authserver.services.tokens import REFRESH_CLAIMS

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


# The claim rules, one row each: the claims a token is signed with (DROP
# leaves one out), the verify options, and the reason it must be refused for
# (so that a row fails when its own rule goes, even if a later one refuses).
DROP = object()
REFRESH_OPTIONS = {"typ": "rt+jwt", "required": REFRESH_CLAIMS}
FULL_CLAIMS = {
    **CLAIMS,
    "client_id": "c",
    "scope": "openid",
    "sid": "family",
    "auth_time": NOW - 60,
    "family_exp": NOW + 3600,
}


def signed(changes: dict, options: dict) -> tuple[str, dict]:
    claims = {**FULL_CLAIMS, **changes}
    claims = {name: value for name, value in claims.items() if value is not DROP}
    return sign_jwt(KEY, claims, typ=options.get("typ", "at+jwt")), claims


CLAIM_REFUSALS = {
    **{
        f"missing-{name}": ({name: DROP}, {}, f"missing {name}")
        for name in ("iss", "sub", "exp", "iat", "jti", "aud")
    },
    **{
        f"missing-required-{name}": ({name: DROP}, REFRESH_OPTIONS, f"missing {name}")
        for name in REFRESH_CLAIMS
    },
    "null-is-missing": ({"sub": None}, {}, "missing sub"),
    "null-required-is-missing": ({"scope": None}, REFRESH_OPTIONS, "missing scope"),
    "empty-sub": ({"sub": ""}, {}, "empty sub"),
    "empty-jti": ({"jti": ""}, {}, "empty jti"),
    "empty-aud-list": ({"aud": []}, {}, "empty aud"),
    "empty-required-string": ({"scope": ""}, REFRESH_OPTIONS, "empty scope"),
    "empty-required-list": ({"client_id": []}, REFRESH_OPTIONS, "empty client_id"),
    "empty-required-object": ({"sid": {}}, REFRESH_OPTIONS, "empty sid"),
    "wrong-iss": ({"iss": "https://evil"}, {}, "wrong iss"),
    "iss-in-a-list": ({"iss": ["https://as"]}, {}, "iss is not a string"),
    "sub-a-number": ({"sub": 7}, {}, "sub is not a string"),
    "jti-a-number": ({"jti": 7}, {}, "jti is not a string"),
    "aud-string-not-ours": ({"aud": "other"}, {}, "wrong aud"),
    "aud-list-without-ours": ({"aud": ["other", "more"]}, {}, "wrong aud"),
    "aud-list-with-a-number": ({"aud": ["api", 1]}, {}, "aud is not"),
    # An aud nobody asked about must still be well-formed.
    "aud-a-number-unchecked": ({"aud": 1}, {"audience": None}, "aud is not"),
    "aud-null-unchecked": ({"aud": None}, {"audience": None}, "aud is not"),
    "exp-equals-now": ({"exp": NOW}, {}, "expired"),
    "exp-past-no-leeway": ({"exp": NOW - 1}, {}, "expired"),
    "exp-at-the-leeway": ({"exp": NOW - 30}, {"leeway": 30}, "expired"),
    "exp-past-beyond-leeway": ({"exp": NOW - 31}, {"leeway": 30}, "expired"),
    "nbf-in-the-future": ({"nbf": NOW + 1}, {}, "not yet valid"),
    "nbf-beyond-leeway": ({"nbf": NOW + 31}, {"leeway": 30}, "not yet valid"),
    "iat-in-the-future": ({"iat": NOW + 1}, {}, "iat is in the future"),
    "iat-beyond-leeway": ({"iat": NOW + 31}, {"leeway": 30}, "iat is in the future"),
    "iat-a-string": ({"iat": str(NOW)}, {}, "iat is not a NumericDate"),
    "exp-a-string": ({"exp": str(NOW + 60)}, {}, "exp is not a NumericDate"),
    "exp-boolean": ({"exp": True}, {}, "exp is not a NumericDate"),
    "iat-boolean": ({"iat": False}, {}, "iat is not a NumericDate"),
    "nbf-boolean": ({"nbf": False}, {}, "nbf is not a NumericDate"),
    "nbf-null": ({"nbf": None}, {}, "nbf is not a NumericDate"),
    # NaN compares false with everything: an exp of NaN would never expire.
    "exp-nan": ({"exp": math.nan}, {}, "exp is not a NumericDate"),
    "exp-infinite": ({"exp": math.inf}, {}, "exp is not a NumericDate"),
    "nbf-nan": ({"nbf": math.nan}, {}, "nbf is not a NumericDate"),
    # allow_expired waives exp's time, nothing else.
    "allow-expired-wrong-iss": (
        {"exp": NOW - 600, "iss": "https://evil"},
        {"allow_expired": True},
        "wrong iss",
    ),
    "allow-expired-boolean-exp": (
        {"exp": True},
        {"allow_expired": True},
        "exp is not a NumericDate",
    ),
    "allow-expired-missing-exp": (
        {"exp": DROP},
        {"allow_expired": True},
        "missing exp",
    ),
    # It judges the token at its last valid instant: an iat after that is in
    # the future of that instant.
    "allow-expired-iat-after-exp": (
        {"exp": NOW - 600, "iat": NOW - 300},
        {"allow_expired": True},
        "iat is in the future",
    ),
    # As with joserfc's registry before: only an int exp moves the clock (ours
    # are always ints).
    "allow-expired-float-exp": (
        {"exp": NOW - 600.5, "iat": NOW - 900},
        {"allow_expired": True},
        "expired",
    ),
}


@pytest.mark.parametrize(
    ("changes", "options", "reason"),
    list(CLAIM_REFUSALS.values()),
    ids=list(CLAIM_REFUSALS),
)
def test_claim_rule_refuses(changes, options, reason):
    token, _ = signed(changes, options)

    with pytest.raises(TokenError, match=re.escape(reason)) as refused:
        verify(token, **options)
    assert str(refused.value).startswith("bad claims: ")


CLAIM_ACCEPTANCES = {
    "aud-string-ours": ({"aud": "api"}, {}),
    "aud-list-with-ours": ({"aud": ["other", "api"]}, {}),
    "aud-anything-unchecked": ({"aud": "other"}, {"audience": None}),
    "aud-empty-list-unchecked": ({"aud": []}, {"audience": None}),
    "aud-absent-unchecked": ({"aud": DROP}, {"audience": None}),
    "exp-one-second-ahead": ({"exp": NOW + 1}, {}),
    "exp-past-within-leeway": ({"exp": NOW - 29}, {"leeway": 30}),
    "exp-non-integer": ({"exp": NOW + 0.5}, {}),
    "iat-non-integer": ({"iat": NOW - 0.5}, {}),
    "iat-equals-now": ({"iat": NOW}, {}),
    "iat-future-within-leeway": ({"iat": NOW + 30}, {"leeway": 30}),
    "nbf-equals-now": ({"nbf": NOW}, {}),
    "nbf-future-within-leeway": ({"nbf": NOW + 30}, {"leeway": 30}),
    "required-all-present": ({}, REFRESH_OPTIONS),
    # Empty means "", [] or {}: a zero or false is a value.
    "required-zero-and-false": ({"auth_time": 0, "sid": False}, REFRESH_OPTIONS),
    "allow-expired-long-expired": (
        {"exp": NOW - 3600, "iat": NOW - 7200},
        {"allow_expired": True},
    ),
    "allow-expired-unexpired": ({}, {"allow_expired": True}),
}


@pytest.mark.parametrize(
    ("changes", "options"),
    list(CLAIM_ACCEPTANCES.values()),
    ids=list(CLAIM_ACCEPTANCES),
)
def test_claim_rule_accepts(changes, options):
    token, claims = signed(changes, options)

    assert verify(token, **options) == claims


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
