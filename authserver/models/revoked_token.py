"""The access-token deny list: revoked access-token jtis, kept until they expire.

Access tokens are verified offline, so revoking one means remembering its jti
until its `exp` has passed; refresh tokens carry their own `revoked_at`.
"""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from authserver.models.base import Base, UTCDateTime, utcnow


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The token's own `exp`: after it, the row is dead weight and is purged.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
