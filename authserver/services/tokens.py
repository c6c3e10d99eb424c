"""Minting and verifying the three JWTs: access (RFC 9068), refresh and ID
tokens, signed with RS256 and verifiable through the JWKS (refresh tokens may
carry an HS256 MAC instead: AUTH_REFRESH_TOKEN_ALG)."""

import copy
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authserver.core.config import Settings
from authserver.core.exceptions import KeyStoreUnavailableError
from authserver.core.security import (
    ACCESS_TOKEN_TYP,
    ID_TOKEN_TYP,
    REFRESH_MAC_ALG,
    REFRESH_TOKEN_TYP,
    sign_jwt,
    verify_jwt,
)
from authserver.services.keystore import KeyStoreError, KeyView, SigningKeyStore

# Beyond the registered claims: what a refresh rotates from (see mint_refresh).
REFRESH_CLAIMS = ("client_id", "scope", "sid", "auth_time", "family_exp")
# Optional: only a family that a browser sign-in made has a login session.
LOGIN_SESSION_CLAIM = "login_sid"


@dataclass(frozen=True)
class MintedToken:
    token: str
    jti: str
    expires_at: datetime


class TokenService:
    def __init__(self, keystore: SigningKeyStore, settings: Settings) -> None:
        self.keystore = keystore
        self.issuer = settings.issuer
        self.default_audience = settings.audience
        self.access_ttl = settings.access_token_ttl
        self.id_ttl = settings.id_token_ttl
        # Refresh tokens are only ever presented back to our token endpoint.
        self.refresh_audience = f"{settings.issuer}/oauth2/token"
        self.refresh_alg = settings.refresh_token_alg
        # A repaired store is seen at its next check, not sooner.
        self.retry_after = max(1, math.ceil(settings.keystore_check_interval))
        self._pinned: KeyView | None = None

    def for_request(self, now: datetime) -> "TokenService":
        """This service with the keys of `now` read once, for one request
        (whose `now` is fixed).

        A broken store refuses the request before it has done anything, and a
        store that breaks while it runs cannot stop it halfway (a login
        counted against the password lock whose tokens then fail to sign).
        """
        pinned = copy.copy(self)
        pinned._pinned = self.keys(now)
        return pinned

    def keys(self, now: datetime) -> KeyView:
        """The keys to sign and verify with; KeyStoreUnavailableError (503) when
        the store cannot be read: the server's fault, not the client's token."""
        if self._pinned is not None:
            return self._pinned
        try:
            return self.keystore.view(now)
        except KeyStoreError as exc:
            raise KeyStoreUnavailableError(
                detail=str(exc), retry_after=self.retry_after
            ) from None

    def mint_access(
        self,
        *,
        subject: str,
        client_id: str,
        scope: str,
        audience: str | None,
        now: datetime,
        client_uuid: str,
        session_id: str | None = None,
        jti: str | None = None,
    ) -> MintedToken:
        expires_at = now + self.access_ttl
        jti = jti or str(uuid.uuid4())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience or self.default_audience,
            "exp": _ts(expires_at),
            "iat": _ts(now),
            "jti": jti,
            "client_id": client_id,
            # The client record it was issued to: a client deleted and made
            # again under the same client_id is another client.
            "client_uuid": client_uuid,
            "scope": scope,
        }
        if session_id is not None:
            # The family (login) it came from: revoking the family ends it too.
            claims["sid"] = session_id
        return self._sign(claims, ACCESS_TOKEN_TYP, jti, expires_at, now)

    def mint_refresh(
        self,
        *,
        jti: str,
        subject: str,
        client_id: str,
        scope: str,
        expires_at: datetime,
        now: datetime,
        family_id: str,
        auth_time: datetime,
        family_expires_at: datetime,
        login_session_id: str | None = None,
    ) -> MintedToken:
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.refresh_audience,
            "exp": _ts(expires_at),
            "iat": _ts(now),
            "jti": jti,
            "client_id": client_id,
            "scope": scope,
            # What its record holds, so a refresh can rotate without reading
            # it first (services.grants.refresh_token).
            "sid": family_id,
            "auth_time": _ts(auth_time),
            "family_exp": _ts(family_expires_at),
        }
        if login_session_id is not None:
            # The browser session the family came from: the `sid` of the ID
            # tokens a refresh mints (the refresh token's own `sid` is the family).
            claims[LOGIN_SESSION_CLAIM] = login_session_id
        view = self.keys(now)
        key = view.refresh_key if self.refresh_alg == REFRESH_MAC_ALG else None
        token = sign_jwt(
            key or view.signing_key, claims, typ=REFRESH_TOKEN_TYP, alg=self.refresh_alg
        )
        return MintedToken(token, jti, expires_at)

    def mint_id(
        self,
        *,
        subject: str,
        client_id: str,
        auth_time: datetime,
        now: datetime,
        nonce: str | None = None,
        session_id: str | None = None,
        jti: str | None = None,
    ) -> MintedToken:
        expires_at = now + self.id_ttl
        jti = jti or str(uuid.uuid4())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": client_id,
            "exp": _ts(expires_at),
            "iat": _ts(now),
            "auth_time": _ts(auth_time),
            "jti": jti,
        }
        if nonce is not None:
            claims["nonce"] = nonce  # OIDC Core §3.1.2.1: echoed unchanged
        if session_id is not None:
            claims["sid"] = session_id  # the browser session that signed in
        return self._sign(claims, ID_TOKEN_TYP, jti, expires_at, now)

    def verify_id_hint(self, token: str, *, now: datetime) -> dict[str, Any]:
        """Claims of an ID token we signed, expired or not (RP-Initiated Logout
        §2: the hint may have expired); raises TokenError otherwise."""
        return verify_jwt(
            token,
            self.keys(now).verify_keys,
            typ=ID_TOKEN_TYP.lower(),
            issuer=self.issuer,
            audience=None,
            now=_ts(now),
            allow_expired=True,
        )

    def verify_refresh(self, token: str, *, now: datetime) -> dict[str, Any]:
        """Claims of a valid refresh JWT; raises TokenError otherwise."""
        view = self.keys(now)
        mac = self.refresh_alg == REFRESH_MAC_ALG
        return verify_jwt(
            token,
            view.refresh_verify_keys if mac else view.verify_keys,
            algorithms=[self.refresh_alg],
            typ=REFRESH_TOKEN_TYP,
            issuer=self.issuer,
            audience=self.refresh_audience,
            now=_ts(now),
            required=REFRESH_CLAIMS,
        )

    def verify_access(
        self, token: str, *, now: datetime, audience: str | None = None
    ) -> dict[str, Any]:
        """Claims of a valid access JWT for `audience`; raises TokenError otherwise."""
        return verify_jwt(
            token,
            self.keys(now).verify_keys,
            typ=ACCESS_TOKEN_TYP,
            issuer=self.issuer,
            audience=audience or self.default_audience,
            now=_ts(now),
        )

    def _sign(
        self,
        claims: dict[str, Any],
        typ: str,
        jti: str,
        expires_at: datetime,
        now: datetime,
    ) -> MintedToken:
        key = self.keys(now).signing_key
        return MintedToken(sign_jwt(key, claims, typ=typ), jti, expires_at)


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())
