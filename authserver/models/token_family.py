"""Token families: one row per login, the grant every token minted from it shares."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from authserver.models.base import Base, UTCDateTime


class TokenFamily(Base):
    """A login's grant: its refresh tokens and access tokens (`sid`) live and
    die with this row. Revoking it is final: statements that rotate or accept
    a token check it, so a token written by a concurrent rotation is dead too."""

    __tablename__ = "token_families"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The family's absolute end (AUTH_REFRESH_TOKEN_MAX_LIFETIME after login).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The browser sign-in (login session) a code exchange made it from: ending
    # that session revokes it. None for the password grant. No foreign key:
    # the session's row is purged once it expires, the family may live on.
    session_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
