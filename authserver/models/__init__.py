"""SQLAlchemy models; importing this package registers every table on Base."""

from authserver.models.audit import AuditEvent
from authserver.models.base import Base
from authserver.models.client import Client
from authserver.models.refresh_token import RefreshToken
from authserver.models.revoked_token import RevokedToken
from authserver.models.token_family import TokenFamily
from authserver.models.user import User

__all__ = [
    "AuditEvent",
    "Base",
    "Client",
    "RefreshToken",
    "RevokedToken",
    "TokenFamily",
    "User",
]
