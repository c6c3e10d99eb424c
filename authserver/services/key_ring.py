"""The signing-key store's logic, once, over two back ends (files, database).

A key's state is derived from its timestamps (KeyRecord.state), so a rotation
scheduled for later takes effect in every process without anyone writing
anything at that moment:
  pending   published, not signing yet (now < signing_from)
  active    signing (the newest key whose signing_from has passed)
  retired   no longer signing; published until published_until so cached JWKS
            still verify the access and ID tokens it signed; retained (still
            verifying its refresh tokens) until retain_until
  expired   past retain_until: nothing it signed can be valid; prunable
Each key also yields the MAC key of the refresh tokens it is current for
(core.security.derive_refresh_key), which therefore lives and dies with it.

SigningKeyStore holds the keys a process serves from (`view()`, no I/O in the
database store) and the writers: first key, rotate, prune, revoke, rewrap,
import. A back end supplies only `_writing()` (an exclusive, checked
transaction on the store), `refresh()` and `view()`. A writer first reads back
every key the store holds, as a server will, and changes nothing if one fails:
a key added next to keys it cannot read would take every server down on its
next reload.
"""

import hashlib
import json
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import anyio.to_thread
from joserfc.jwk import KeySet, OctKey, RSAKey

from authserver.core.security import SIGNING_ALG, derive_refresh_key
from authserver.services.key_files import KeyRecord, KeyStoreError

KEY_SIZE = 2048


@dataclass(frozen=True)
class KeyTiming:
    """Lifetimes that decide how long an old key must stay around."""

    jwks_max_age: timedelta
    token_ttl: timedelta  # longest access or ID token lifetime
    refresh_max_lifetime: timedelta


@dataclass(frozen=True)
class KeyView:
    """What a process needs at one moment: one signer, verifiers, the JWKS."""

    signing_key: RSAKey
    verify_keys: KeySet
    refresh_key: OctKey  # the signing key's refresh-token MAC key
    refresh_verify_keys: KeySet  # the MAC keys of the verify keys
    jwks_json: bytes
    etag: str
    valid_until: datetime | None  # the next timestamp that changes any state


@dataclass(frozen=True)
class StoredKey:
    record: KeyRecord
    key: RSAKey


class KeyWriter(ABC):
    """One exclusive change to a store; `records` were all read back first."""

    records: list[KeyRecord]
    keys: dict[str, RSAKey]

    @abstractmethod
    async def save(
        self,
        records: Sequence[KeyRecord],
        *,
        new: Sequence[StoredKey] = (),
        removed: Sequence[str] = (),
    ) -> None:
        """Make `records` the store's list, adding `new` keys, deleting `removed`."""

    @abstractmethod
    async def rewrap(self) -> list[str]:
        """Re-encrypt every key not under the current passphrase; their kids."""


def generate_key() -> RSAKey:
    kid = uuid.uuid4().hex
    return RSAKey.generate_key(KEY_SIZE, parameters={"kid": kid})


async def generate_key_in_thread() -> RSAKey:
    # RSA key generation takes 0.1-1 s of CPU: never on the event loop.
    return await anyio.to_thread.run_sync(generate_key)


class SigningKeyStore(ABC):
    where: str  # names the store in messages: "key store keys/"

    def __init__(self, timing: KeyTiming) -> None:
        self.timing = timing
        self._mutex = threading.Lock()
        self._records: list[KeyRecord] = []
        self._private: dict[str, RSAKey] = {}
        self._refresh: dict[str, OctKey] = {}
        self._view: KeyView | None = None

    # --- reading -----------------------------------------------------------

    @abstractmethod
    def view(self, now: datetime | None = None) -> KeyView:
        """The keys to sign and verify with now; no database I/O."""

    @abstractmethod
    async def refresh(self) -> None:
        """Load the store's current keys (raises KeyStoreError if one fails)."""

    async def watch(self, interval: float) -> None:
        """Keep the keys current in a server; returns at once when `view()`
        itself re-checks the store."""

    async def aclose(self) -> None:
        """Release connections."""

    def exposure(self) -> str | None:
        """What in the store other users of this host may read, or None."""
        return None

    async def records(self) -> list[KeyRecord]:
        await self.refresh()
        return list(self._records)

    async def stored_keys(self) -> list[StoredKey]:
        """Every key with its private part (for export)."""
        await self.refresh()
        with self._mutex:
            return [StoredKey(r, self._private[r.kid]) for r in self._records]

    def _install(self, records: list[KeyRecord], keys: Mapping[str, RSAKey]) -> None:
        with self._mutex:
            refresh = {
                kid: (
                    self._refresh[kid]
                    if self._private.get(kid) is key
                    else derive_refresh_key(key)
                )
                for kid, key in keys.items()
            }
            self._records = records
            self._private = dict(keys)
            self._refresh = refresh
            self._view = None

    def _current_view(self, now: datetime) -> KeyView:
        view = self._view
        if view is not None and (view.valid_until is None or now < view.valid_until):
            return view
        with self._mutex:
            view = _build_view(self._records, self._private, self._refresh, now)
            self._view = view
            return view

    # --- writing: the state logic ------------------------------------------

    @abstractmethod
    def _writing(
        self, action: str | None, *, empty_ok: bool = False
    ) -> AbstractAsyncContextManager[KeyWriter]:
        """Exclusive across processes and hosts until the block ends. With an
        `action`, every key is read back first (a failure names it and the
        action); with None, `records` holds the list unread, for the first key.
        `empty_ok`: a store not created yet is no error (import).
        """

    @abstractmethod
    async def _is_empty(self) -> bool:
        """Whether the store holds no keys yet (a cheap look, no lock)."""

    async def ensure_signing_key(self, now: datetime | None = None) -> bool:
        """Create the first key when the store is empty; True if one was made.

        Several servers may start at once: they take turns under the store's
        lock and only the first creates a key.
        """
        if not await self._is_empty():
            return False
        key = await generate_key_in_thread()  # outside the lock: others wait less
        async with self._writing(None) as writer:
            if writer.records:
                return False
            now = now or datetime.now(UTC)
            record = KeyRecord(
                kid=str(key.kid), alg=SIGNING_ALG, created_at=now, signing_from=now
            )
            await writer.save([record], new=[StoredKey(record, key)])
        return True

    async def rotate(
        self, *, immediate: bool = False, now: datetime | None = None
    ) -> KeyRecord:
        """Add a key that signs after the JWKS cache lifetime (or at once)."""
        key = await generate_key_in_thread()
        async with self._writing("rotate") as writer:
            now = now or datetime.now(UTC)
            try:
                starts = now if immediate else now + self.timing.jwks_max_age
                # Every key that would still sign at `starts` stops then,
                # including one a previous, not yet effective rotation scheduled.
                retired = [
                    (
                        self._retire(r, starts)
                        if r.signing_until is None or r.signing_until > starts
                        else r
                    )
                    for r in writer.records
                ]
            except OverflowError:
                raise KeyStoreError(
                    "cannot rotate (key store unchanged): the key lifetimes "
                    "(AUTH_JWKS_MAX_AGE, token TTLs, "
                    "AUTH_REFRESH_TOKEN_MAX_LIFETIME) reach past the year 9999"
                ) from None
            new = KeyRecord(
                kid=str(key.kid), alg=SIGNING_ALG, created_at=now, signing_from=starts
            )
            await writer.save([*retired, new], new=[StoredKey(new, key)])
            return new

    async def prune(self, now: datetime | None = None) -> list[KeyRecord]:
        """Delete keys nothing valid can need any more; return them."""
        async with self._writing("prune") as writer:
            now = now or datetime.now(UTC)
            gone = [r for r in writer.records if r.state(now) == "expired"]
            kept = [r for r in writer.records if r.state(now) != "expired"]
            if not any(r.state(now) == "active" for r in kept):
                raise KeyStoreError("refusing to prune: no active key would remain")
            if gone:  # an unchanged store is not rewritten: every server would reload
                await writer.save(kept, removed=[r.kid for r in gone])
            return gone

    async def revoke(self, kid: str, now: datetime | None = None) -> KeyRecord | None:
        """Withdraw a (compromised) key at once: out of the store, the JWKS and
        verification. Everything it signed stops being valid, refresh tokens
        included. If no other key signs now, a new one does, from now; it is
        returned (None when another key already signs).
        """
        async with self._writing("revoke") as writer:
            now = now or datetime.now(UTC)
            if not any(r.kid == kid for r in writer.records):
                raise KeyStoreError(f"no key {kid} in the key store")
            kept = [r for r in writer.records if r.kid != kid]
            if signing_record(kept, now) is not None:
                await writer.save(kept, removed=[kid])
                return None
            key = await generate_key_in_thread()
            replacement = KeyRecord(
                kid=str(key.kid), alg=SIGNING_ALG, created_at=now, signing_from=now
            )
            await writer.save(
                [*kept, replacement],
                new=[StoredKey(replacement, key)],
                removed=[kid],
            )
            return replacement

    async def rewrap(self) -> list[str]:
        """Re-encrypt every key under the first passphrase; the kids changed."""
        async with self._writing("rewrap") as writer:
            return await writer.rewrap()

    async def import_keys(self, keys: Sequence[StoredKey]) -> None:
        """Fill an empty store with `keys` (another store's, states unchanged)."""
        async with self._writing("import", empty_ok=True) as writer:
            if writer.records:
                raise KeyStoreError(
                    f"cannot import: {self.where} already holds "
                    f"{len(writer.records)} key(s); import into an empty store"
                )
            if signing_record([k.record for k in keys], datetime.now(UTC)) is None:
                raise KeyStoreError("cannot import: no key in the source signs now")
            await writer.save([k.record for k in keys], new=keys)

    def _retire(self, record: KeyRecord, signing_until: datetime) -> KeyRecord:
        t = self.timing
        published_until = signing_until + t.token_ttl + t.jwks_max_age
        retain_until = max(published_until, signing_until + t.refresh_max_lifetime)
        return replace(
            record,
            signing_until=signing_until,
            published_until=published_until,
            retain_until=retain_until,
        )


def signing_record(records: Sequence[KeyRecord], now: datetime) -> KeyRecord | None:
    """The key that signs at `now`: the newest active one, or None."""
    signers = [r for r in records if r.state(now) == "active"]
    return max(signers, key=lambda r: r.signing_from, default=None)


def public_jwk(key: RSAKey, alg: str) -> dict[str, object]:
    return {**key.as_dict(private=False), "use": "sig", "alg": alg}


def _build_view(
    records: list[KeyRecord],
    private: Mapping[str, RSAKey],
    refresh: Mapping[str, OctKey],
    now: datetime,
) -> KeyView:
    usable = [r for r in records if r.state(now) != "expired"]
    signer = signing_record(usable, now)
    if signer is None:
        raise KeyStoreError("no active signing key in the key store")
    public = [public_jwk(private[r.kid], r.alg) for r in usable if r.is_published(now)]
    jwks_json = json.dumps({"keys": public}, separators=(",", ":")).encode()
    return KeyView(
        signing_key=private[signer.kid],
        verify_keys=KeySet([private[r.kid] for r in usable]),
        refresh_key=refresh[signer.kid],
        refresh_verify_keys=KeySet([refresh[r.kid] for r in usable]),
        jwks_json=jwks_json,
        etag='"' + hashlib.sha256(jwks_json).hexdigest()[:32] + '"',
        valid_until=_next_transition(records, now),
    )


def _next_transition(records: list[KeyRecord], now: datetime) -> datetime | None:
    moments = [
        moment
        for r in records
        for moment in (
            r.signing_from,
            r.signing_until,
            r.published_until,
            r.retain_until,
        )
        if moment is not None and moment > now
    ]
    return min(moments, default=None)
