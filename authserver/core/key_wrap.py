"""Key-encryption keys (KEKs): private signing keys sealed with AES-256-GCM.

A KEK is derived from a passphrase with scrypt (N=2**15, r=8, p=1): a stolen
database is then as hard to open as the passphrase is to guess, at one scrypt
per guess, even when the passphrase is a memorable phrase rather than random
bytes. The salt is fixed and versioned instead of per key, so a KEK is derived
once per process (about 0.1 s) and has one stable id; the cost is that a
precomputed dictionary would serve every deployment at once, which a long
random passphrase (`openssl rand -base64 32`) makes moot.

The KEK id names the key that sealed a blob without revealing it: it is a hash
of the derived key, so testing a guessed passphrase against the id costs the
same scrypt as testing it against the ciphertext.
"""

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

KDF_SALT = b"authserver signing-key KEK v1"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
NONCE_BYTES = 12  # 96 bits, AES-GCM's native nonce size


class UnwrapError(Exception):
    """A sealed key does not open: no configured KEK sealed it, or it was altered."""


@dataclass(frozen=True)
class Sealed:
    kek_id: str
    nonce: bytes
    ciphertext: bytes  # with the 16-byte GCM tag


@dataclass(frozen=True)
class KeyEncryptionKey:
    id: str
    _aead: AESGCM = field(repr=False)

    @classmethod
    def derive(cls, passphrase: str) -> "KeyEncryptionKey":
        kdf = Scrypt(salt=KDF_SALT, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
        key = kdf.derive(passphrase.encode())
        kek_id = hashlib.sha256(b"authserver KEK id\x00" + key).hexdigest()[:16]
        return cls(kek_id, AESGCM(key))


class KeyEncryptionKeys:
    """The configured KEKs: the first seals, every one opens."""

    def __init__(self, keks: Sequence[KeyEncryptionKey]) -> None:
        if not keks:
            raise ValueError("at least one key-encryption key is needed")
        self.current = keks[0]
        self._by_id = {kek.id: kek for kek in keks}

    @classmethod
    def from_passphrases(cls, passphrases: Sequence[str]) -> "KeyEncryptionKeys":
        return cls([KeyEncryptionKey.derive(p) for p in passphrases])

    @property
    def ids(self) -> list[str]:
        return list(self._by_id)

    def seal(self, plaintext: bytes, *, associated_data: bytes) -> Sealed:
        """Encrypt under the current KEK; `associated_data` (the kid) binds the
        blob to its row, so a ciphertext copied under another kid fails to open."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self.current._aead.encrypt(nonce, plaintext, associated_data)
        return Sealed(self.current.id, nonce, ciphertext)

    def open(self, sealed: Sealed, *, associated_data: bytes) -> bytes:
        kek = self._by_id.get(sealed.kek_id)
        if kek is None:
            raise UnwrapError(
                f"sealed by key-encryption key {sealed.kek_id}, which no configured "
                f"passphrase derives (configured: {', '.join(self._by_id)}): wrong "
                "AUTH_KEYS_PASSPHRASE, or the old one is missing from "
                "AUTH_KEYS_PREVIOUS_PASSPHRASES"
            )
        try:
            return kek._aead.decrypt(sealed.nonce, sealed.ciphertext, associated_data)
        except InvalidTag:
            raise UnwrapError(
                f"does not decrypt under key-encryption key {sealed.kek_id}: the "
                "stored ciphertext, nonce or kid was altered"
            ) from None
