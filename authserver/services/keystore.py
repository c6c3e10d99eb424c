"""The signing-key store: PEM files plus a manifest, shared by every process.

Layout of the directory (AUTH_KEYS_DIR):
  manifest.json  kid, algorithm and the timestamps that decide each key's state
  <kid>.pem      the private key, mode 0600, encrypted when a passphrase is set
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
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from joserfc.jwk import KeySet, OctKey, RSAKey

from authserver.core.config import Settings
from authserver.core.security import SIGNING_ALG, derive_refresh_key

KEY_SIZE = 2048
MANIFEST = "manifest.json"
KeyState = Literal["pending", "active", "retired", "expired"]


class KeyStoreError(Exception):
    """The key store is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class KeyTiming:
    """Lifetimes that decide how long an old key must stay around."""

    jwks_max_age: timedelta
    token_ttl: timedelta  # longest access or ID token lifetime
    refresh_max_lifetime: timedelta


@dataclass(frozen=True)
class KeyRecord:
    kid: str
    alg: str
    created_at: datetime
    signing_from: datetime
    signing_until: datetime | None = None
    published_until: datetime | None = None
    retain_until: datetime | None = None

    def state(self, now: datetime) -> KeyState:
        if self.retain_until is not None and now >= self.retain_until:
            return "expired"
        if self.signing_until is not None and self.signing_until <= self.signing_from:
            return "retired"  # superseded by a newer rotation before it ever signed
        if now < self.signing_from:
            return "pending"
        if self.signing_until is None or now < self.signing_until:
            return "active"
        return "retired"

    def is_published(self, now: datetime) -> bool:
        return self.published_until is None or now < self.published_until

    def to_json(self) -> dict[str, Any]:
        return {
            k: v.isoformat() if isinstance(v, datetime) else v
            for k, v in asdict(self).items()
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "KeyRecord":
        def when(name: str) -> datetime | None:
            value = data.get(name)
            return datetime.fromisoformat(value) if value else None

        return cls(
            kid=data["kid"],
            alg=data["alg"],
            created_at=datetime.fromisoformat(data["created_at"]),
            signing_from=datetime.fromisoformat(data["signing_from"]),
            signing_until=when("signing_until"),
            published_until=when("published_until"),
            retain_until=when("retain_until"),
        )


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
        records = _read_manifest(path)
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
        pem = (self.directory / f"{kid}.pem").read_bytes()
        try:
            return RSAKey.import_key(
                pem,
                parameters={"kid": kid, "alg": SIGNING_ALG, "use": "sig"},
                password=self._passphrase,
            )
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(
                f"cannot load key {kid}: wrong or missing AUTH_KEYS_PASSPHRASE?"
            ) from exc

    # --- writing (under the directory lock) ----------------------------------

    def ensure_signing_key(self, now: datetime | None = None) -> bool:
        """Create the first key when the store is empty; True if one was made."""
        with self._locked():
            if (self.directory / MANIFEST).exists():
                return False
            now = now or datetime.now(UTC)
            record = self._new_key(now, signing_from=now)
            _write_manifest(self.directory, [record])
            return True

    def rotate(
        self, *, immediate: bool = False, now: datetime | None = None
    ) -> KeyRecord:
        """Add a key that signs after the JWKS cache lifetime (or at once)."""
        with self._locked():
            now = now or datetime.now(UTC)
            records = _read_manifest(self.directory / MANIFEST)
            starts = now if immediate else now + self.timing.jwks_max_age
            new = self._new_key(now, signing_from=starts)
            # Every key that would still sign at `starts` stops then, including
            # one a previous, not yet effective rotation scheduled.
            retired = [
                (
                    self._retire(r, starts)
                    if r.signing_until is None or r.signing_until > starts
                    else r
                )
                for r in records
            ]
            _write_manifest(self.directory, [*retired, new])
            return new

    def prune(self, now: datetime | None = None) -> list[KeyRecord]:
        """Delete keys nothing valid can need any more; return them."""
        with self._locked():
            now = now or datetime.now(UTC)
            records = _read_manifest(self.directory / MANIFEST)
            gone = [r for r in records if r.state(now) == "expired"]
            kept = [r for r in records if r.state(now) != "expired"]
            if not any(r.state(now) == "active" for r in kept):
                raise KeyStoreError("refusing to prune: no active key would remain")
            _write_manifest(self.directory, kept)
            for record in gone:
                (self.directory / f"{record.kid}.pem").unlink(missing_ok=True)
            return gone

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

    def _new_key(self, now: datetime, *, signing_from: datetime) -> KeyRecord:
        kid = uuid.uuid4().hex
        key = RSAKey.generate_key(KEY_SIZE, parameters={"kid": kid})
        pem = key.as_pem(private=True, password=self._passphrase)
        _write_private(self.directory / f"{kid}.pem", pem)
        return KeyRecord(
            kid=kid, alg=SIGNING_ALG, created_at=now, signing_from=signing_from
        )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
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


def _read_manifest(path: Path) -> list[KeyRecord]:
    try:
        data = json.loads(path.read_text())
        return [KeyRecord.from_json(item) for item in data["keys"]]
    except FileNotFoundError:
        raise KeyStoreError(f"no key manifest at {path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyStoreError(f"corrupt key manifest {path}: {exc}") from None


def _write_manifest(directory: Path, records: list[KeyRecord]) -> None:
    data = {"version": 1, "keys": [r.to_json() for r in records]}
    tmp = directory / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, directory / MANIFEST)  # readers see the old or the new file


def _write_private(path: Path, pem: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())


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
