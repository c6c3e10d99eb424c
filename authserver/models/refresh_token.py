"""Refresh-token records: one row per issued refresh token, keyed by its jti."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from authserver.models.base import Base, UTCDateTime


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Every token minted from one login shares the family (models.token_family);
    # reuse revokes it all. No foreign key: its check would lock the family
    # row on every rotation, and the rotating statement checks the row anyway.
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(1024))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaced_by: Mapped[str | None] = mapped_column(String(36))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # While a lost answer may be retried (services.refresh.reuse): until when,
    # and the scope the rotation's access token got; the answer itself is
    # re-signed from the records. retry_blob holds the sealed answer of a
    # rotation made before migration 0008 (kept for its retry window).
    retry_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retry_scope: Mapped[str | None] = mapped_column(String(1024))
    retry_blob: Mapped[bytes | None] = mapped_column(LargeBinary)
