"""Compact JWS signing and checking of the server's own tokens, on its hot path.

joserfc is the JOSE library here: keys, the JWKS and every token that is not
exactly one of ours go through it. Signing our own tokens needs none of its
generality (per-call registries, header checks, key-operation lookups), which
costs about 25 us on top of a 250 us RSA-2048 signature, twice per refresh.
This module writes the very bytes joserfc's `jwt.encode` writes for the same
header and claims (tests/unit/test_jws.py compares them; RS256 and HS256
signatures are deterministic), signing with the key's own `cryptography`
object or HMAC.

Checking one of our own tokens is the same shortcut backwards
(`verify_own`): a token whose header is, byte for byte, one this module
writes for a key of the set is checked with that key directly, which costs
about half of joserfc's `jwt.decode` (the RSA verification itself is a third
of it). It only ever accepts: anything else, a bad signature included, is
left to joserfc, so it accepts nothing joserfc would refuse.
"""

import base64
import hashlib
import hmac
import json
from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey, RSAKey
from joserfc.util import urlsafe_b64decode

RS256 = "RS256"
HS256 = "HS256"

_KEY_TYPES: dict[str, type[RSAKey] | type[OctKey]] = {RS256: RSAKey, HS256: OctKey}
_PKCS1 = PKCS1v15()
_SHA256 = SHA256()


def sign_compact(
    key: RSAKey | OctKey, claims: Mapping[str, Any], *, typ: str, alg: str
) -> str:
    """`header.payload.signature` for RS256 with an RSA private key or HS256
    with a MAC key; ValueError for any other pairing (no alg is inferred)."""
    if key.kid is None:
        raise ValueError("signing keys have a kid")
    signing_input = (
        _header_segment(alg, typ, key.kid) + b"." + _b64(_json(claims).encode())
    )
    if alg == RS256 and isinstance(key, RSAKey):
        private = key.private_key
        if not isinstance(private, RSAPrivateKey):
            raise ValueError("RS256 signs with a private key")
        signature = private.sign(signing_input, _PKCS1, _SHA256)
    elif alg == HS256 and isinstance(key, OctKey):
        secret = key.get_op_key("sign")
        if not secret:
            raise ValueError("an empty MAC key forges nothing but signs anything")
        signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    else:
        raise ValueError(f"no {alg} signing with {type(key).__name__}")
    return (signing_input + b"." + _b64(signature)).decode("ascii")


def verify_own(
    token: str, keys: KeySet, *, typ: str, algorithms: Collection[str]
) -> dict[str, Any] | None:
    """The claims of `token` when it is exactly as `sign_compact` writes it
    for `typ`, an allowed algorithm and a key of `keys`, and its signature
    holds; None for anything else, which only joserfc may then accept."""
    if not token.isascii():
        return None  # we write base64url only
    signing_input, _, signature = token.encode("ascii").rpartition(b".")
    header, _, payload = signing_input.partition(b".")
    key = _key_for(header, keys, typ, algorithms)
    if key is None or b"." in payload:
        return None
    try:
        if not _signature_holds(key, signing_input, urlsafe_b64decode(signature)):
            return None
        claims = json.loads(urlsafe_b64decode(payload))
    # The same refusals joserfc makes, left to it to make: strict base64
    # (ValueError), a key whose key_ops forbid verifying (JoseError), JSON
    # nested too deep (RecursionError).
    except (ValueError, JoseError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None


def _key_for(
    header: bytes, keys: KeySet, typ: str, algorithms: Collection[str]
) -> RSAKey | OctKey | None:
    """The key whose header of ours `header` is, for an allowed algorithm:
    the key joserfc picks for it (the first of the set with its kid that is
    not meant for another algorithm or for encryption)."""
    for alg in algorithms:
        key_type = _KEY_TYPES.get(alg)
        if key_type is None:
            continue
        picked: set[str] = set()  # kids whose key joserfc would take
        for key in keys:
            kid = key.kid
            if kid is None or kid in picked or key.get("alg") not in (None, alg):
                continue
            if key.get("use") not in (None, "sig"):
                continue
            picked.add(kid)
            if isinstance(key, key_type) and _header_segment(alg, typ, kid) == header:
                return key
    return None


def _signature_holds(key: RSAKey | OctKey, signing_input: bytes, sig: bytes) -> bool:
    if isinstance(key, RSAKey):
        public = key.get_op_key("verify")
        assert isinstance(public, RSAPublicKey)
        try:
            public.verify(sig, signing_input, _PKCS1, _SHA256)
        except InvalidSignature:
            return False
        return True
    secret = key.get_op_key("verify")
    if not secret:
        return False
    expected = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return hmac.compare_digest(expected, sig)


@lru_cache(maxsize=256)  # a few kids and three token types
def _header_segment(alg: str, typ: str, kid: str) -> bytes:
    # joserfc's order: its default `typ` first, then the given members.
    header = {"typ": typ, "alg": alg, "kid": kid}
    return _b64(json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode())


def _json(claims: Mapping[str, Any]) -> str:
    return json.dumps(claims, ensure_ascii=False, separators=(",", ":"))


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")
