"""The signing-key store: PEM files plus a manifest, shared by every process.

Layout of the directory (AUTH_KEYS_DIR):
  manifest.json  kid, algorithm and the timestamps that decide each key's state
  <kid>.pem      the private key, mode 0600; all encrypted with AUTH_KEYS_PASSPHRASE
                 or none (a writer refuses to mix them)
  .lock          flock() target: writers (first start, rotate, prune) take turns

A key's state is derived from its timestamps, so a rotation scheduled for later
takes effect in every process without anyone writing anything at that moment:
  pending   published, not signing yet (now < signing_from)
  active    signing (the newest key whose signing_from has passed)
  retired   no longer signing; published until published_until so cached JWKS
            still verify the access and ID tokens it signed; retained (still
            verifying its refresh tokens) until retain_until
  expired   past retain_until: nothing it signed can be valid; prunable
Each key also yields the MAC key of the refresh tokens it is current for
(core.security.derive_refresh_key), which therefore lives and dies with it.
Readers re-check the manifest at most every `check_interval` seconds and see a
whole file or none (it is replaced atomically).
"""

import fcntl
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from joserfc.jwk import KeySet, OctKey, RSAKey

from authserver.core.config import Settings
from authserver.core.security import SIGNING_ALG, derive_refresh_key
from authserver.services.key_files import (
    MANIFEST,
    KeyRecord,
    KeyState,
    KeyStoreError,
    fsync_directory,
    load_key_file,
    manifest_bytes,
    read_manifest,
    write_manifest,
    write_private,
)

__all__ = ["MANIFEST", "KeyRecord", "KeyState", "KeyStoreError", "KeyStore"]

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


class KeyStore:
    def __init__(
        self,
        directory: Path,
        *,
        timing: KeyTiming,
        passphrase: str | None = None,
        check_interval: float = 1.0,
    ) -> None:
        self.directory = directory
        self.timing = timing
        self._passphrase = passphrase
        self._check_interval = check_interval
        self._mutex = threading.Lock()
        self._manifest_id: tuple[int, int, int] | None = None
        self._records: list[KeyRecord] = []
        self._private: dict[str, RSAKey] = {}
        self._refresh: dict[str, OctKey] = {}  # derived once per loaded key
        self._view: KeyView | None = None
        self._next_check = 0.0

    # --- reading -----------------------------------------------------------

    def view(self, now: datetime | None = None) -> KeyView:
        """The current keys, reloaded when the manifest or the time calls for it."""
        now = now or datetime.now(UTC)
        monotonic = time.monotonic()
        view = self._view
        if (
            view is not None
            and monotonic < self._next_check
            and (view.valid_until is None or now < view.valid_until)
        ):
            return view
        with self._mutex:
            self._next_check = monotonic + self._check_interval
            changed = self._reload_if_changed()
            view = self._view
            if (
                changed
                or view is None
                or (view.valid_until is not None and now >= view.valid_until)
            ):
                view = self._build_view(now)
                self._view = view
        return view

    def records(self) -> list[KeyRecord]:
        with self._mutex:
            self._reload_if_changed()
            return list(self._records)

    def _reload_if_changed(self) -> bool:
        path = self.directory / MANIFEST
        try:
            st = path.stat()
        except FileNotFoundError:
            raise KeyStoreError(f"no key manifest at {path}") from None
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        if identity == self._manifest_id:
            return False
        records = read_manifest(path)
        for record in records:
            if record.kid not in self._private:
                key = self._load_private(record.kid)
                self._private[record.kid] = key
                self._refresh[record.kid] = derive_refresh_key(key)
        live = {r.kid for r in records}
        self._private = {k: v for k, v in self._private.items() if k in live}
        self._refresh = {k: v for k, v in self._refresh.items() if k in live}
        self._records = records
        self._manifest_id = identity
        return True

    def _build_view(self, now: datetime) -> KeyView:
        usable = [r for r in self._records if r.state(now) != "expired"]
        signer = signing_record(usable, now)
        if signer is None:
            raise KeyStoreError("no active signing key in the key store")
        published = [r for r in usable if r.is_published(now)]
        public = [
            {**self._private[r.kid].as_dict(private=False), "use": "sig", "alg": r.alg}
            for r in published
        ]
        jwks_json = json.dumps({"keys": public}, separators=(",", ":")).encode()
        return KeyView(
            signing_key=self._private[signer.kid],
            verify_keys=KeySet([self._private[r.kid] for r in usable]),
            refresh_key=self._refresh[signer.kid],
            refresh_verify_keys=KeySet([self._refresh[r.kid] for r in usable]),
            jwks_json=jwks_json,
            etag='"' + hashlib.sha256(jwks_json).hexdigest()[:32] + '"',
            valid_until=_next_transition(self._records, now),
        )

    def _load_private(self, kid: str) -> RSAKey:
        return load_key_file(self.directory / f"{kid}.pem", kid, self._passphrase)

    # --- writing (under the directory lock) ----------------------------------
    #
    # A writer first reads back every key the manifest names, as a server will,
    # and writes nothing if one fails: a key added next to keys it cannot read
    # (or encrypted differently) would take every server down on its next
    # reload. New files become visible only through the manifest, which is
    # replaced last, so a failure on the way leaves the store as it was.

    def ensure_signing_key(self, now: datetime | None = None) -> bool:
        """Create the first key when the store is empty; True if one was made."""
        with self._locked(create=True):
            if (self.directory / MANIFEST).exists():
                return False
            now = now or datetime.now(UTC)
            kid, pem = self._generate()
            record = KeyRecord(
                kid=kid, alg=SIGNING_ALG, created_at=now, signing_from=now
            )
            self._commit([record], new_key=(kid, pem))
            return True

    def rotate(
        self, *, immediate: bool = False, now: datetime | None = None
    ) -> KeyRecord:
        """Add a key that signs after the JWKS cache lifetime (or at once)."""
        with self._locked():
            records = self._checked_records("rotate")
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
                    for r in records
                ]
            except OverflowError:
                raise KeyStoreError(
                    "cannot rotate (key store unchanged): the key lifetimes "
                    "(AUTH_JWKS_MAX_AGE, token TTLs, "
                    "AUTH_REFRESH_TOKEN_MAX_LIFETIME) reach past the year 9999"
                ) from None
            kid, pem = self._generate()
            new = KeyRecord(
                kid=kid, alg=SIGNING_ALG, created_at=now, signing_from=starts
            )
            self._commit([*retired, new], new_key=(kid, pem))
            return new

    def prune(self, now: datetime | None = None) -> list[KeyRecord]:
        """Delete keys nothing valid can need any more; return them."""
        with self._locked():
            records = self._checked_records("prune")
            now = now or datetime.now(UTC)
            gone = [r for r in records if r.state(now) == "expired"]
            kept = [r for r in records if r.state(now) != "expired"]
            if not any(r.state(now) == "active" for r in kept):
                raise KeyStoreError("refusing to prune: no active key would remain")
            if not gone:
                return []  # rewriting an unchanged manifest would reload every server
            self._commit(kept)
            # Only now, with no manifest naming them, may the files go.
            for record in gone:
                (self.directory / f"{record.kid}.pem").unlink(missing_ok=True)
            return gone

    def revoke(self, kid: str, now: datetime | None = None) -> KeyRecord | None:
        """Withdraw a (compromised) key at once: out of the manifest, the JWKS
        and verification, its file deleted. Everything it signed stops being
        valid, refresh tokens included. If no other key signs now, a new one
        does, from now; it is returned (None when another key already signs).
        """
        with self._locked():
            records = self._checked_records("revoke")
            now = now or datetime.now(UTC)
            if not any(r.kid == kid for r in records):
                raise KeyStoreError(f"no key {kid} in the key store")
            kept = [r for r in records if r.kid != kid]
            replacement = None
            if signing_record(kept, now) is None:
                new_kid, pem = self._generate()
                replacement = KeyRecord(
                    kid=new_kid, alg=SIGNING_ALG, created_at=now, signing_from=now
                )
                self._commit([*kept, replacement], new_key=(new_kid, pem))
            else:
                self._commit(kept)
            # Only now, with no manifest naming it, may the file go.
            (self.directory / f"{kid}.pem").unlink(missing_ok=True)
            return replacement

    def _checked_records(self, action: str) -> list[KeyRecord]:
        """The manifest's records once every key it names has loaded."""
        try:
            records = read_manifest(self.directory / MANIFEST)
            for record in records:
                self._load_private(record.kid)
        except KeyStoreError as exc:
            raise KeyStoreError(
                f"cannot {action} (key store unchanged): {exc}"
            ) from None
        return records

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

    def _generate(self) -> tuple[str, bytes]:
        """A new kid and its private key as PEM, encrypted when a passphrase is set.

        Only called after every existing key loaded with the same passphrase
        (or none), which load_key_file accepts only when each file is encrypted
        exactly when one is set: so the new key is encrypted like the others.
        """
        kid = uuid.uuid4().hex
        key = RSAKey.generate_key(KEY_SIZE, parameters={"kid": kid})
        return kid, key.as_pem(private=True, password=self._passphrase)

    def _commit(
        self, records: list[KeyRecord], *, new_key: tuple[str, bytes] | None = None
    ) -> None:
        """Write the new key file (if any), then the manifest; all or nothing."""
        manifest = manifest_bytes(records)
        written: Path | None = None
        try:
            if new_key is not None:
                kid, pem = new_key
                path = self.directory / f"{kid}.pem"
                write_private(path, pem)
                written = path
                fsync_directory(self.directory)
                self._load_private(kid)  # read it back as a server will
            write_manifest(self.directory, manifest)
        except BaseException:
            if written is not None:
                written.unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self, *, create: bool = False) -> Iterator[None]:
        if create:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        elif not self.directory.is_dir():
            raise KeyStoreError(f"no key manifest at {self.directory / MANIFEST}")
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._next_check = 0.0  # our own change: pick it up on the next read


def signing_record(records: Sequence[KeyRecord], now: datetime) -> KeyRecord | None:
    """The key that signs at `now`: the newest active one, or None."""
    signers = [r for r in records if r.state(now) == "active"]
    return max(signers, key=lambda r: r.signing_from, default=None)


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


def keystore_from_settings(settings: Settings) -> KeyStore:
    passphrase = settings.keys_passphrase
    return KeyStore(
        settings.keys_dir,
        timing=KeyTiming(
            jwks_max_age=settings.jwks_max_age,
            token_ttl=max(settings.access_token_ttl, settings.id_token_ttl),
            refresh_max_lifetime=settings.refresh_token_max_lifetime,
        ),
        passphrase=(passphrase.get_secret_value() or None) if passphrase else None,
        check_interval=settings.keystore_check_interval,
    )
