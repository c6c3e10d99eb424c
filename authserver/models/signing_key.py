"""Signing keys of the database key store, private parts sealed (AES-256-GCM)."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from authserver.models.base import Base, UTCDateTime


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(128), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    # PKCS#8 DER of the private key, sealed under the KEK `kek_id` names, with
    # the kid as associated data.
    private_key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    kek_id: Mapped[str] = mapped_column(String(32))
    # The moments that give the key's state (services.key_ring.KeyRecord).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signing_from: Mapped[datetime] = mapped_column(UTCDateTime)
    signing_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SigningKeyStoreVersion(Base):
    """One row whose counter every change to signing_keys bumps.

    Servers poll this one integer to notice a change; writers update it first
    in their transaction, which makes it the lock that gives every host one
    writer at a time (a row lock on PostgreSQL; on SQLite the write lock that
    BEGIN IMMEDIATE already took).
    """

    __tablename__ = "signing_key_store"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
