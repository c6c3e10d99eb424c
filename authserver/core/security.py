"""Primitives: password and client-secret hashing, JWT sign/verify, sealed blobs.

Everything here is pure and synchronous; callers pass issuer, keys and TTLs in.
bcrypt is slow on purpose: async callers run the password functions through
`anyio.to_thread.run_sync`, never on the event loop.
"""

import base64
import hashlib
import hmac
import json
import math
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey, RSAKey
from passlib.context import CryptContext

from authserver.core.exceptions import TokenError
from authserver.core.jws import sign_compact, verify_own

# The one algorithm we sign tokens with and the only one accepted for them
# (RFC 8725 §3.1).
SIGNING_ALG = "RS256"
ALLOWED_ALGS = (SIGNING_ALG,)
# The opt-in alternative for refresh tokens (AUTH_REFRESH_TOKEN_ALG=HS256),
# which only this server reads: a MAC costs a fraction of an RSA signature, and
# nobody else can check it. Its key is derived from the RSA signing key
# (derive_refresh_key), so it is made, rotated, retired and pruned with it.
REFRESH_MAC_ALG = "HS256"

ACCESS_TOKEN_TYP = "at+jwt"  # RFC 9068 §2.1
REFRESH_TOKEN_TYP = "rt+jwt"  # ours: never accepted where an access token is due
ID_TOKEN_TYP = "JWT"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Passwords: bcrypt over SHA-256 has no 72-byte limit and no silent truncation;
# plain bcrypt hashes (imported from elsewhere) still verify and are upgraded.
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024


def make_password_context(rounds: int) -> CryptContext:
    return CryptContext(
        schemes=["bcrypt_sha256", "bcrypt"],
        deprecated=["bcrypt"],
        bcrypt_sha256__rounds=rounds,
        bcrypt__rounds=rounds,
    )


def hash_password(context: CryptContext, password: str) -> str:
    """Hash a password (slow: call from a worker thread)."""
    password_hash: str = context.hash(password)
    return password_hash


def verify_password(
    context: CryptContext, password: str, password_hash: str
) -> tuple[bool, str | None]:
    """Check a password; also return a new hash when the stored one is outdated."""
    try:
        valid, new_hash = context.verify_and_update(password, password_hash)
        return bool(valid), new_hash
    except ValueError:
        # Malformed stored hash or an input bcrypt refuses: a failed login.
        return False, None


def password_problem(password: str) -> str | None:
    """Why a new password is unacceptable, or None when it is fine.

    The one password policy: the API's bodies and authctl apply it through
    the schemas' NewPassword type.
    """
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"password must be at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"password must be at most {PASSWORD_MAX_LENGTH} characters"
    if "\x00" in password:
        return "password must not contain NUL characters"
    try:
        # JSON allows lone surrogates, and so does stdin read with
        # surrogateescape (a C locale); bcrypt hashes bytes.
        password.encode("utf-8")
    except UnicodeEncodeError:
        return "password must be valid Unicode text"
    return None


# Client secrets are 256-bit random strings made by the server, so a fast keyed
# hash is enough (nothing to brute-force) and keeps client auth cheap.
CLIENT_SECRET_BYTES = 32
_SECRET_SCHEME = "hmac-sha256"


def generate_client_secret() -> str:
    return secrets.token_urlsafe(CLIENT_SECRET_BYTES)


def hash_client_secret(secret: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hmac.new(salt, secret.encode(), hashlib.sha256).digest()
    return f"{_SECRET_SCHEME}${_b64(salt)}${_b64(digest)}"


def verify_client_secret(secret: str, secret_hash: str) -> bool:
    """Constant-time check of a presented secret against its stored hash."""
    parsed = _parse_secret_hash(secret_hash)
    if parsed is None:
        return False
    salt, expected = parsed
    actual = hmac.digest(salt, secret.encode(), "sha256")
    return hmac.compare_digest(actual, expected)


@lru_cache(maxsize=1024)  # one entry per client: parsed once, not per request
def _parse_secret_hash(secret_hash: str) -> tuple[bytes, bytes] | None:
    """The salt and digest of a stored hash of our scheme, else None."""
    try:
        scheme, salt, digest = secret_hash.split("$")
        parsed = _unb64(salt), _unb64(digest)
    except ValueError:
        return None
    return parsed if scheme == _SECRET_SCHEME else None


# A hash that no secret matches, so an unknown client costs the same work.
DUMMY_CLIENT_SECRET_HASH = hash_client_secret(secrets.token_urlsafe(32))


def sign_jwt(
    key: RSAKey | OctKey,
    claims: Mapping[str, Any],
    *,
    typ: str,
    alg: str = SIGNING_ALG,
) -> str:
    return sign_compact(key, claims, typ=typ, alg=alg)  # what joserfc would write


def derive_refresh_key(signing_key: RSAKey) -> OctKey:
    """The refresh-token MAC key that belongs to an RSA signing key.

    HKDF over the private key, bound to its kid and to this one use: secret
    like the private key, independent of it and of every other derived key.
    """
    kid = signing_key.kid
    assert kid is not None, "key-store keys always have a kid"
    private = signing_key.private_key
    assert isinstance(private, RSAPrivateKey), "signing keys are private keys"
    material = private.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    secret = HKDF(
        algorithm=SHA256(),
        length=32,
        salt=kid.encode(),
        info=b"authserver refresh-token mac v1",
    ).derive(material)
    return OctKey.import_key(secret, parameters={"kid": kid, "alg": REFRESH_MAC_ALG})


# The registered claims every token of ours carries (RFC 7519 §4.1).
ESSENTIAL_CLAIMS = ("iss", "sub", "exp", "iat", "jti")


def verify_jwt(
    token: str,
    keys: KeySet,
    *,
    typ: str,
    issuer: str,
    audience: str | None,
    now: int,
    leeway: int = 0,
    algorithms: Sequence[str] = ALLOWED_ALGS,
    required: Sequence[str] = (),
    allow_expired: bool = False,
) -> dict[str, Any]:
    """Verify signature, algorithm, kid, typ, iss, aud and exp; return the claims.

    `allow_expired` judges the token at the last instant it was valid when
    that is before `now` (an id_token_hint may have expired: OIDC
    RP-Initiated Logout §2). Raises TokenError saying why, for logs only.
    """
    # Our own tokens, as we write them, the short way (core.jws): it accepts
    # only what joserfc would, and leaves everything else to joserfc.
    claims = verify_own(token, keys, typ=typ, algorithms=algorithms)
    if claims is None:
        claims = _decode_with_joserfc(token, keys, typ=typ, algorithms=algorithms)
    exp = claims.get("exp")
    # Only an int exp moves the clock (a bool is refused below all the same).
    if allow_expired and isinstance(exp, int):
        now = min(now, exp - 1)  # exp is the first instant it fails
    essential = (*ESSENTIAL_CLAIMS, *required, *(() if audience is None else ("aud",)))
    _check_claims(claims, essential, issuer, audience, now, leeway)
    return claims


def _decode_with_joserfc(
    token: str, keys: KeySet, *, typ: str, algorithms: Sequence[str]
) -> dict[str, Any]:
    try:
        token_obj = jwt.decode(token, keys, algorithms=list(algorithms))
    # joserfc bounds the header it parses before the signature check and reads
    # the claims only after it; RecursionError (not a ValueError) is caught all
    # the same, so no JSON shape can ever turn into a 500.
    except (JoseError, ValueError, TypeError, RecursionError) as exc:
        raise TokenError(f"bad token: {type(exc).__name__}") from None
    header = token_obj.header
    if "kid" not in header:
        raise TokenError("no kid in header")
    if str(header.get("typ", "")).lower() != typ:
        raise TokenError(f"wrong typ {header.get('typ')!r}")
    claims: dict[str, Any] = token_obj.claims  # a fresh dict from json.loads
    return claims


def _check_claims(
    claims: Mapping[str, Any],
    essential: Sequence[str],
    issuer: str,
    audience: str | None,
    now: int,
    leeway: int,
) -> None:
    """The claim rules (RFC 7519 §4.1), checked directly: exactly what
    joserfc 1.8's JWTClaimsRegistry refused for the options verify_jwt gave
    it, which, built on every call, was a sixth of the refresh grant's
    verification.

    Messages name the claim, never its value: they go to logs.
    """
    # An essential claim is missing when absent or null, and refused when an
    # empty string, list or object.
    missing = sorted({name for name in essential if claims.get(name) is None})
    if missing:
        raise TokenError(f"bad claims: missing {','.join(missing)}")
    for name in essential:
        if claims[name] in ("", [], {}):
            raise TokenError(f"bad claims: empty {name}")
    # The registered claims' types and rules hold whenever they are present,
    # essential or not (an aud we do not check must still be well-formed).
    for name in ("iss", "sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenError(f"bad claims: {name} is not a string")
    if claims["iss"] != issuer:
        raise TokenError("bad claims: wrong iss")
    if "aud" in claims:
        _check_audience(claims["aud"], audience)
    for name in ("exp", "iat", "nbf"):
        if name in claims and not _is_numeric_date(claims[name]):
            raise TokenError(f"bad claims: {name} is not a NumericDate")
    if claims["exp"] <= now - leeway:
        raise TokenError("bad claims: expired")
    if claims["iat"] > now + leeway:
        raise TokenError("bad claims: iat is in the future")
    if "nbf" in claims and claims["nbf"] > now + leeway:
        raise TokenError("bad claims: not yet valid (nbf)")


def _check_audience(aud: object, audience: str | None) -> None:
    """`aud` is one string or a list of strings (RFC 7519 §4.1.3); when we
    expect an audience, it is that string or one of the list's."""
    if isinstance(aud, str):
        ours = aud == audience
    elif isinstance(aud, list) and all(isinstance(item, str) for item in aud):
        ours = audience in aud
    else:
        raise TokenError("bad claims: aud is not a string or a list of strings")
    if audience is not None and not ours:
        raise TokenError("bad claims: wrong aud")


def _is_numeric_date(value: object) -> bool:
    """A JSON number that is a time (RFC 7519 §2): never a boolean, never NaN
    or an infinity, against which every comparison is false (an exp that never
    expires). An int is always finite."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


# Opaque browser-flow secrets (authorization codes, session cookies, CSRF
# tokens): 256 random bits, stored only as SHA-256, which suffices for values
# that cannot be guessed (no salt or slow hash needed, unlike passwords).
def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def opaque_token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def opaque_token_matches(value: str, expected_hash: str) -> bool:
    return hmac.compare_digest(opaque_token_hash(value), expected_hash)


# RFC 7636 §4.1: 43 to 128 unreserved characters.
PKCE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")  # base64url(SHA-256), no padding


def pkce_s256_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6: BASE64URL(SHA256(ASCII(verifier))) == challenge, in
    constant time."""
    if not PKCE_VERIFIER.fullmatch(verifier):
        return False
    computed = _b64(hashlib.sha256(verifier.encode("ascii")).digest())
    return hmac.compare_digest(computed, challenge)


# Before migration 0008 the refresh grant stored each rotation's answer sealed
# under a key derived from the presented refresh token, which the database
# never holds (a dump of the table yields no usable token). Such answers are
# still opened for their retry window (services.refresh.reuse); `seal` stays
# beside `unseal` as the definition of that format, which tests write.
def seal(secret_token: str, context: str, payload: Mapping[str, Any]) -> bytes:
    nonce = os.urandom(12)
    aead = AESGCM(_derive_key(secret_token, context))
    data = json.dumps(payload, separators=(",", ":")).encode()
    return nonce + aead.encrypt(nonce, data, context.encode())


def unseal(secret_token: str, context: str, blob: bytes) -> dict[str, Any] | None:
    aead = AESGCM(_derive_key(secret_token, context))
    try:
        data = aead.decrypt(blob[:12], blob[12:], context.encode())
    except Exception:  # InvalidTag, truncated blob: not ours to open
        return None
    result: dict[str, Any] = json.loads(data)
    return result


def _derive_key(secret_token: str, context: str) -> bytes:
    hkdf = HKDF(
        algorithm=SHA256(),
        length=32,
        salt=context.encode(),
        info=b"authserver refresh retry v1",
    )
    return hkdf.derive(secret_token.encode())
