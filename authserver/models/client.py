"""OAuth clients (RFC 6749 §2)."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, String, Uuid, false, text
from sqlalchemy.orm import Mapped, mapped_column

from authserver.models.base import Base, UTCDateTime, utcnow


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # None marks a public client (authenticates with client_id only).
    secret_hash: Mapped[str | None] = mapped_column(String(255))
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    audience: Mapped[str | None] = mapped_column(String(255))
    # Exact strings: /authorize and logout redirect only to one of these.
    redirect_uris: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    # A third party's app asks the user's consent; our own apps do not.
    is_third_party: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None
