"""Our compact signer writes exactly what joserfc's jwt.encode writes."""

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from authserver.core.jws import sign_compact

RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
MAC = OctKey.generate_key(256, parameters={"kid": "mac-1"})
CLAIMS = {
    "iss": "https://issuer.example",
    "sub": "0b5c6f7e-7d1e-4c1a-9a8e-0e4f0d3c2b1a",
    "aud": ["api", "other"],
    "exp": 1_900_000_000,
    "scope": "openid api:read",
    "name": 'Zoë \u2603 "quoted" \\ /',  # non-ASCII and escapes in the payload
}


@pytest.mark.parametrize(
    ("key", "alg", "typ"),
    [(RSA, "RS256", "at+jwt"), (RSA, "RS256", "JWT"), (MAC, "HS256", "rt+jwt")],
)
def test_the_bytes_are_joserfcs(key, alg, typ):
    header = {"alg": alg, "typ": typ, "kid": key.kid}
    expected = jwt.encode(header, dict(CLAIMS), key, algorithms=[alg])

    assert sign_compact(key, CLAIMS, typ=typ, alg=alg) == expected


def test_joserfc_verifies_it():
    token = sign_compact(RSA, CLAIMS, typ="at+jwt", alg="RS256")

    decoded = jwt.decode(token, RSA, algorithms=["RS256"])

    assert decoded.claims == CLAIMS
    assert decoded.header == {"typ": "at+jwt", "alg": "RS256", "kid": "rsa-1"}


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (RSA, "HS256"),  # an RSA key as a MAC secret: the classic confusion
        (MAC, "RS256"),
        (RSA, "none"),
        (RSA, "RS512"),
        (RSAKey.import_key(RSA.as_dict(private=False)), "RS256"),  # public only
    ],
)
def test_any_other_pairing_is_refused(key, alg):
    with pytest.raises(ValueError):
        sign_compact(key, CLAIMS, typ="at+jwt", alg=alg)


def test_a_key_without_kid_is_refused():
    with pytest.raises(ValueError):
        sign_compact(RSAKey.generate_key(2048), CLAIMS, typ="at+jwt", alg="RS256")
