"""Our compact signer writes exactly what joserfc's jwt.encode writes, and our
shortcut for checking our own tokens accepts only what joserfc accepts."""

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey, RSAKey

from authserver.core.jws import sign_compact, verify_own

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


# verify_own: the shortcut for our own tokens accepts exactly what joserfc's
# jwt.decode accepts of them, and leaves everything else (None) to joserfc.
RSA_PUBLIC = RSAKey.import_key(RSA.as_dict(private=False), parameters={"kid": "rsa-1"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})  # same kid, other key
KEYS = KeySet([RSA_PUBLIC])
OURS = sign_compact(RSA, CLAIMS, typ="rt+jwt", alg="RS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _resigned(header: dict, payload: bytes, key=RSA, alg="RS256") -> str:
    """A token with this exact header and payload, signed by `key`."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(payload)}"
    if alg == "HS256":
        sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    else:
        sig = key.private_key.sign(signing_input.encode(), PKCS1v15(), SHA256())
    return f"{signing_input}.{_b64(sig)}"


def _header_of(token: str) -> str:
    return token.split(".")[0]


def _tamper_payload(token: str) -> str:
    header, _, sig = token.split(".")
    claims = dict(CLAIMS, scope="admin")
    return f"{header}.{_b64(json.dumps(claims).encode())}.{sig}"


def _flip_signature(token: str) -> str:
    head, sig = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[-1] ^= 1
    return f"{head}.{_b64(bytes(raw))}"


OUR_HEADER = {"typ": "rt+jwt", "alg": "RS256", "kid": "rsa-1"}
TOKENS = {
    "ours": OURS,
    "signed by another key with our kid": sign_compact(
        OTHER, CLAIMS, typ="rt+jwt", alg="RS256"
    ),
    "payload changed": _tamper_payload(OURS),
    "signature changed": _flip_signature(OURS),
    "signature padded": OURS + "==",
    "signature in standard base64": OURS[:-2] + "+/",
    "a fourth segment": OURS + ".e30",
    "two segments": OURS.rsplit(".", 1)[0],
    "empty": "",
    "header members reordered (joserfc's to judge)": _resigned(
        {"alg": "RS256", "kid": "rsa-1", "typ": "rt+jwt"}, json.dumps(CLAIMS).encode()
    ),
    "payload is a JSON list": _resigned(OUR_HEADER, b"[1, 2]"),
    "payload is no JSON": _resigned(OUR_HEADER, b"{not json"),
    "payload nested too deep": _resigned(OUR_HEADER, b"[" * 100_000),
    "an access token where a refresh token is due": sign_compact(
        RSA, CLAIMS, typ="at+jwt", alg="RS256"
    ),
    "HS256 keyed with the public key's PEM": _resigned(
        {"typ": "rt+jwt", "alg": "HS256", "kid": "rsa-1"},
        json.dumps(CLAIMS).encode(),
        key=RSA_PUBLIC.as_pem(),
        alg="HS256",
    ),
    "unknown kid": sign_compact(
        RSAKey.generate_key(2048, parameters={"kid": "rsa-9"}),
        CLAIMS,
        typ="rt+jwt",
        alg="RS256",
    ),
}


def _joserfc(token: str, keys: KeySet, typ: str, algorithms: list[str]):
    """jwt.decode's claims and verify_jwt's header rules, or None if refused."""
    try:
        decoded = jwt.decode(token, keys, algorithms=algorithms)
    except (JoseError, ValueError, TypeError, RecursionError):
        return None
    if "kid" not in decoded.header or decoded.header.get("typ", "").lower() != typ:
        return None
    return decoded.claims


@pytest.mark.parametrize("name", list(TOKENS))
def test_the_shortcut_accepts_only_what_joserfc_accepts(name):
    token = TOKENS[name]
    expected = _joserfc(token, KEYS, "rt+jwt", ["RS256"])

    found = verify_own(token, KEYS, typ="rt+jwt", algorithms=["RS256"])

    assert found is None or found == expected
    if expected is None:
        assert found is None


def test_our_tokens_take_the_shortcut():
    # Not vacuous: the cases above hold as well if it never answered.
    assert verify_own(OURS, KEYS, typ="rt+jwt", algorithms=["RS256"]) == CLAIMS
    mac = sign_compact(MAC, CLAIMS, typ="rt+jwt", alg="HS256")
    assert verify_own(mac, KeySet([MAC]), typ="rt+jwt", algorithms=["HS256"]) == CLAIMS


@pytest.mark.parametrize(
    ("keys", "algorithms"),
    [
        (KEYS, ["HS256"]),  # RS256 is not allowed here
        (KeySet([MAC]), ["RS256"]),  # a MAC key signs no RS256
        (  # a key that says it is for another algorithm
            KeySet([RSAKey.import_key(RSA.as_dict(private=False), {"alg": "RS512"})]),
            ["RS256"],
        ),
        (  # a key whose key_ops do not include verify
            KeySet(
                [RSAKey.import_key(RSA.as_dict(private=False), {"key_ops": ["sign"]})]
            ),
            ["RS256"],
        ),
        (  # an encryption key
            KeySet([RSAKey.import_key(RSA.as_dict(private=False), {"use": "enc"})]),
            ["RS256"],
        ),
    ],
)
def test_keys_and_algorithms_joserfc_would_not_use_are_not_used(keys, algorithms):
    assert verify_own(OURS, keys, typ="rt+jwt", algorithms=algorithms) is None


def test_a_kid_names_the_first_key_that_has_it():
    # joserfc looks a kid up as the first key of the set with it.
    shadowed = KeySet([RSAKey.import_key(OTHER.as_dict(private=False)), RSA_PUBLIC])

    assert verify_own(OURS, shadowed, typ="rt+jwt", algorithms=["RS256"]) is None
    assert _joserfc(OURS, shadowed, "rt+jwt", ["RS256"]) is None


def test_a_key_for_another_algorithm_does_not_shadow_its_kid():
    # joserfc skips a key meant for another algorithm and takes the next one.
    keys = KeySet(
        [
            RSAKey.import_key(OTHER.as_dict(private=False), {"alg": "RS512"}),
            RSA_PUBLIC,
        ]
    )

    assert _joserfc(OURS, keys, "rt+jwt", ["RS256"]) == CLAIMS
    assert verify_own(OURS, keys, typ="rt+jwt", algorithms=["RS256"]) == CLAIMS
