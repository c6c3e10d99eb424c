"""The signing-key stores: pick one from the settings; the file store itself.

AUTH_KEYS_STORE=file (the default) keeps the keys in AUTH_KEYS_DIR:
  manifest.json  kid, algorithm and the timestamps that decide each key's state
  <kid>.pem      the private key, mode 0600; all encrypted with AUTH_KEYS_PASSPHRASE
                 or none (a writer refuses to mix them)
  .lock          flock() target: writers (first start, rotate, prune) take turns
Readers re-check the manifest at most every `check_interval` seconds and see a
whole file or none (it is replaced atomically). New key files become visible
only through the manifest, which is replaced last, so a failure on the way
leaves the store as it was.

AUTH_KEYS_STORE=database keeps them in the signing_keys table
(services.key_database). The states and every change are key_ring's, shared.
"""

import fcntl
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio.to_thread
from joserfc.jwk import RSAKey
from sqlalchemy.ext.asyncio import AsyncEngine

from authserver.core.config import Settings
from authserver.services.key_database import DatabaseKeyStore
from authserver.services.key_files import (
    MANIFEST,
    KeyRecord,
    KeyState,
    KeyStoreError,
    exposure,
    fsync_directory,
    load_key_file,
    manifest_bytes,
    read_manifest,
    replace_file,
    write_manifest,
    write_private,
)
from authserver.services.key_ring import (
    KeyTiming,
    KeyView,
    KeyWriter,
    SigningKeyStore,
    StoredKey,
    signing_record,
)

__all__ = [
    "MANIFEST",
    "KeyRecord",
    "KeyState",
    "KeyStoreError",
    "KeyStore",
    "KeyTiming",
    "KeyView",
    "SigningKeyStore",
    "keystore_from_settings",
    "signing_record",
]


class KeyStore(SigningKeyStore):
    """The file store: a directory of PEM files and a manifest."""

    def __init__(
        self,
        directory: Path,
        *,
        timing: KeyTiming,
        passphrase: str | None = None,
        previous_passphrases: Sequence[str] = (),
        check_interval: float = 1.0,
    ) -> None:
        super().__init__(timing)
        self.directory = directory
        self.where = f"key store {directory}"
        self._passphrases = [passphrase, *previous_passphrases] if passphrase else []
        self._check_interval = check_interval
        self._reload_mutex = threading.Lock()
        self._manifest_id: tuple[int, int, int] | None = None
        self._next_check = 0.0
        self._broken: str | None = None

    # --- reading -----------------------------------------------------------

    def view(self, now: datetime | None = None) -> KeyView:
        """The current keys, reloaded when the manifest or the time calls for it.

        A store that failed to load stays failed (for the JWKS, the token
        endpoint and /health/ready alike) until a reload succeeds: serving the
        last good keys on some requests and an error on others would hide it.
        """
        if time.monotonic() >= self._next_check:
            try:
                self._reload()
            except KeyStoreError:
                pass  # recorded in self._broken
        if self._broken is not None:
            raise KeyStoreError(self._broken)
        return self._current_view(now or datetime.now(UTC))

    async def refresh(self) -> None:
        await anyio.to_thread.run_sync(self._reload)

    def exposure(self) -> str | None:
        """What in the store other users may read, or None if it is private."""
        return exposure(self.directory)

    def _reload(self) -> None:
        with self._reload_mutex:
            self._next_check = time.monotonic() + self._check_interval
            try:
                self._reload_if_changed()
            except KeyStoreError as exc:
                self._broken = str(exc)
                raise
            except OSError as exc:
                self._broken = f"{self.where}: {exc.strerror or exc}"
                raise KeyStoreError(self._broken) from None
            self._broken = None

    def _reload_if_changed(self) -> None:
        path = self.directory / MANIFEST
        try:
            st = path.stat()
        except FileNotFoundError:
            raise KeyStoreError(f"no key manifest at {path}") from None
        identity = (st.st_ino, st.st_mtime_ns, st.st_size)
        if identity == self._manifest_id:
            return
        records = read_manifest(path)
        keys = {}
        for record in records:
            known = self._private.get(record.kid)
            keys[record.kid] = (
                known if known is not None else self._load_private(record.kid)
            )
        self._install(records, keys)
        self._manifest_id = identity

    def _load_private(self, kid: str) -> RSAKey:
        return load_key_file(self.directory / f"{kid}.pem", kid, self._passphrases)

    # --- writing (under the directory lock) ----------------------------------

    async def _is_empty(self) -> bool:
        return not await anyio.to_thread.run_sync((self.directory / MANIFEST).exists)

    @asynccontextmanager
    async def _writing(
        self, action: str | None, *, empty_ok: bool = False
    ) -> AsyncIterator[KeyWriter]:
        if action is None or empty_ok:
            await anyio.to_thread.run_sync(self._create_directory)
        elif not self.directory.is_dir():
            raise KeyStoreError(f"no key manifest at {self.directory / MANIFEST}")
        if action is not None and (problem := self.exposure()) is not None:
            raise KeyStoreError(f"cannot {action}: {problem}")
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
            writer = await anyio.to_thread.run_sync(self._writer, action, empty_ok)
            yield writer
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._next_check = 0.0  # our own change: pick it up on the next read

    def _create_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A directory that holds no store yet (a checkout's keys/, mode 0755
        # with its .gitkeep) becomes one now: private before a key is written.
        # A store that exists keeps its modes: those are the operator's, and
        # are warned about or refused (exposure).
        if not (self.directory / MANIFEST).exists():
            if self.directory.stat().st_uid == os.getuid():
                os.chmod(self.directory, 0o700)

    def _writer(self, action: str | None, empty_ok: bool) -> "_FileWriter":
        path = self.directory / MANIFEST
        if action is None:
            records = read_manifest(path) if path.exists() else []
            return _FileWriter(self, records, {})
        try:
            records = read_manifest(path) if path.exists() or not empty_ok else []
            keys = {r.kid: self._load_private(r.kid) for r in records}
        except KeyStoreError as exc:
            raise KeyStoreError(
                f"cannot {action} (key store unchanged): {exc}"
            ) from None
        return _FileWriter(self, records, keys)


class _FileWriter(KeyWriter):
    def __init__(
        self, store: KeyStore, records: list[KeyRecord], keys: dict[str, RSAKey]
    ) -> None:
        self.store = store
        self.records = records
        self.keys = keys

    async def save(
        self,
        records: Sequence[KeyRecord],
        *,
        new: Sequence[StoredKey] = (),
        removed: Sequence[str] = (),
    ) -> None:
        await anyio.to_thread.run_sync(self._save, list(records), list(new), removed)

    def _save(
        self, records: list[KeyRecord], new: list[StoredKey], removed: Sequence[str]
    ) -> None:
        """Write the new key files, then the manifest; all or nothing. Files of
        removed keys go last, once no manifest names them."""
        directory = self.store.directory
        manifest = manifest_bytes(records)
        written: list[Path] = []
        try:
            for stored in new:
                path = directory / f"{stored.record.kid}.pem"
                write_private(path, self._pem(stored.key))
                written.append(path)
            if written:
                fsync_directory(directory)
                for stored in new:  # read back as a server will
                    self.store._load_private(stored.record.kid)
            write_manifest(directory, manifest)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        for kid in removed:
            (directory / f"{kid}.pem").unlink(missing_ok=True)

    async def rewrap(self) -> list[str]:
        return await anyio.to_thread.run_sync(self._rewrap)

    def _rewrap(self) -> list[str]:
        passphrases = self.store._passphrases
        if not passphrases:
            raise KeyStoreError("cannot rewrap: AUTH_KEYS_PASSPHRASE is not set")
        directory = self.store.directory
        changed = []
        for record in self.records:
            path = directory / f"{record.kid}.pem"
            try:
                load_key_file(path, record.kid, passphrases[:1])
                continue  # already under the current passphrase
            except KeyStoreError:
                pass
            # Each file is replaced whole; the key inside is the same, so a
            # server that reads either version signs alike.
            replace_file(path, self._pem(self.keys[record.kid]))
            changed.append(record.kid)
        return changed

    def _pem(self, key: RSAKey) -> bytes:
        """Encrypted under the current passphrase (every existing key loaded
        with the configured ones first: the store stays all one kind)."""
        passphrases = self.store._passphrases
        return key.as_pem(
            private=True, password=passphrases[0] if passphrases else None
        )


def key_timing(settings: Settings) -> KeyTiming:
    return KeyTiming(
        jwks_max_age=settings.jwks_max_age,
        token_ttl=max(settings.access_token_ttl, settings.id_token_ttl),
        refresh_max_lifetime=settings.refresh_token_max_lifetime,
    )


def keystore_from_settings(
    settings: Settings, *, engine: AsyncEngine | None = None
) -> SigningKeyStore:
    """The store AUTH_KEYS_STORE names; the database one on `engine` if given
    (else on a small engine of its own)."""
    passphrases = settings.key_passphrases
    if settings.keys_store == "database":
        return DatabaseKeyStore(
            settings,
            timing=key_timing(settings),
            passphrases=passphrases,
            engine=engine,
        )
    return file_keystore(settings, settings.keys_dir, passphrases=passphrases)


def file_keystore(
    settings: Settings, directory: Path, *, passphrases: Sequence[str]
) -> KeyStore:
    return KeyStore(
        directory,
        timing=key_timing(settings),
        passphrase=passphrases[0] if passphrases else None,
        previous_passphrases=passphrases[1:],
        check_interval=settings.keystore_check_interval,
    )
