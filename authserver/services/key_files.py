"""The key store's files: the manifest and the PEM keys, read and written.

Every problem with a file is a KeyStoreError naming the key, the file and the
fault; every write is durable (fsync) and leaves nothing behind on failure.
The store's logic (which key signs, rotation, pruning) is in keystore.py.
"""

import base64
import binascii
import json
import os
import re
import secrets
import stat
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from authserver.core.security import SIGNING_ALG

MANIFEST = "manifest.json"
KeyState = Literal["pending", "active", "retired", "expired"]
# A kid names a file in the store, so it may not hold a path separator or "..".
KID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PEM_PRIVATE_KEY = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----\r?\n(.*?)-----END \1-----", re.DOTALL
)


class KeyStoreError(Exception):
    """The key store is missing, unreadable or inconsistent."""


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
        """Parse one manifest entry; a ValueError names the field at fault."""
        kid = _field(data, "kid")
        if not KID_PATTERN.fullmatch(kid):
            raise ValueError(f"field 'kid' is not a key id: {kid!r}")
        return cls(
            kid=kid,
            alg=_field(data, "alg"),
            created_at=_required_moment(data, "created_at"),
            signing_from=_required_moment(data, "signing_from"),
            signing_until=_moment(data, "signing_until"),
            published_until=_moment(data, "published_until"),
            retain_until=_moment(data, "retain_until"),
        )


def _field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        raise ValueError(f"field {name!r} is missing")
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {name!r} is not a non-empty string: {value!r}")
    return value


def _required_moment(data: dict[str, Any], name: str) -> datetime:
    moment = _moment(data, name)
    if moment is None:
        raise ValueError(f"field {name!r} is missing")
    return moment


def _moment(data: dict[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"field {name!r} is not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        # Compared with aware times everywhere: a naive one would crash readers.
        raise ValueError(f"field {name!r} has no UTC offset: {value!r}")
    return moment


def load_key_file(path: Path, kid: str, passphrases: Sequence[str]) -> RSAKey:
    """Load one key file, or raise KeyStoreError naming the kid, file and fault.

    `passphrases`: the current one first, then older ones (none: unencrypted).
    """
    where = f"key {kid} ({path})"
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise KeyStoreError(
            f"{where}: file missing, though {MANIFEST} lists the key"
        ) from None
    except OSError as exc:
        raise KeyStoreError(f"{where}: cannot read: {exc.strerror or exc}") from None
    encrypted = _pem_encryption(pem)
    if encrypted is None:
        raise KeyStoreError(
            f"{where}: not a valid PEM private key (empty, truncated or damaged)"
        )
    # The files themselves record whether the store is encrypted; a store is
    # all one or the other, never silently mixed.
    if encrypted and not passphrases:
        raise KeyStoreError(f"{where}: encrypted, but AUTH_KEYS_PASSPHRASE is not set")
    if not encrypted and passphrases:
        raise KeyStoreError(
            f"{where}: not encrypted, but AUTH_KEYS_PASSPHRASE is set (this store's "
            "keys were made without one: unset it)"
        )
    candidates: Sequence[str | None] = passphrases or [None]
    for passphrase in candidates:
        try:
            return RSAKey.import_key(
                pem,
                parameters={"kid": kid, "alg": SIGNING_ALG, "use": "sig"},
                password=passphrase,
            )
        except JoseError:
            raise KeyStoreError(f"{where}: not an RSA private key") from None
        except (ValueError, TypeError):
            continue
    if encrypted:
        raise KeyStoreError(
            f"{where}: encrypted, and AUTH_KEYS_PASSPHRASE does not decrypt it "
            "(wrong passphrase, or a damaged file)"
        )
    raise KeyStoreError(f"{where}: not a valid PEM private key (damaged contents)")


def exposure(directory: Path) -> str | None:
    """What in a key store other users may read or list, or None if private."""
    open_paths = []
    try:
        paths = [directory, *sorted(directory.iterdir())]
    except OSError:
        return None  # a missing store is reported by whoever reads it
    for path in paths:
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_IMODE(st.st_mode) & 0o077 and (
            path == directory or path.name == MANIFEST or path.suffix == ".pem"
        ):
            open_paths.append(f"{path} mode {stat.S_IMODE(st.st_mode):04o}")
    if not open_paths:
        return None
    return (
        f"key store {directory} is open to other users ({', '.join(open_paths)}): "
        f"run chmod 700 {directory} && chmod 600 {directory}/*"
    )


def _pem_encryption(pem: bytes) -> bool | None:
    """Whether a PEM private key is encrypted; None if it is not well-formed PEM."""
    match = _PEM_PRIVATE_KEY.search(pem)
    if match is None:
        return None
    label, body = match.groups()
    if b"Proc-Type:" in body:  # traditional OpenSSL armour, with headers
        return b"Proc-Type: 4,ENCRYPTED" in body
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
    except binascii.Error:
        return None
    if not der:
        return None
    return label.startswith(b"ENCRYPTED ")


def read_manifest(path: Path) -> list[KeyRecord]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyStoreError(f"no key manifest at {path}") from None
    except OSError as exc:
        raise KeyStoreError(
            f"cannot read key manifest {path}: {exc.strerror or exc}"
        ) from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise KeyStoreError(f"corrupt key manifest {path}: not JSON ({exc})") from None
    items = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise KeyStoreError(f'corrupt key manifest {path}: no "keys" list')
    records: list[KeyRecord] = []
    for number, item in enumerate(items, start=1):
        kid = item.get("kid") if isinstance(item, dict) else None
        name = f"key {kid}" if isinstance(kid, str) and kid else f"key #{number}"
        try:
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
            record = KeyRecord.from_json(item)
        except ValueError as exc:
            raise KeyStoreError(f"corrupt key manifest {path}: {name}: {exc}") from None
        if any(r.kid == record.kid for r in records):
            raise KeyStoreError(f"corrupt key manifest {path}: {name} is listed twice")
        records.append(record)
    return records


def manifest_bytes(records: list[KeyRecord]) -> bytes:
    data = {"version": 1, "keys": [r.to_json() for r in records]}
    return (json.dumps(data, indent=2) + "\n").encode()


def write_manifest(directory: Path, manifest: bytes) -> None:
    replace_file(directory / MANIFEST, manifest)


def replace_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically: readers see the old or the new file, whole.

    The temporary file is new (O_EXCL, O_NOFOLLOW) under an unguessable name in
    the same directory: nobody else's file or symlink is ever written through.
    """
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        _write_file(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fsync_directory(directory)
    except OSError:
        pass  # the new file is in place and being read: do not undo it now


def write_private(path: Path, pem: bytes) -> None:
    _write_file(path, pem)


def _write_file(path: Path, data: bytes) -> None:
    """Write, flush and fsync a new 0600 file; remove it on failure."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = os.open(path, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def fsync_directory(directory: Path) -> None:
    """Make renames and new files in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
