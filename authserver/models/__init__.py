"""SQLAlchemy models; importing this package registers every table on Base."""

from authserver.models.audit import AuditEvent
from authserver.models.authorization import (
    AuthorizationCode,
    AuthorizationRequest,
    Consent,
    LoginSession,
)
from authserver.models.base import Base
from authserver.models.client import Client
from authserver.models.refresh_token import RefreshToken
from authserver.models.revoked_token import RevokedToken
from authserver.models.signing_key import SigningKey, SigningKeyStoreVersion
from authserver.models.token_family import TokenFamily
from authserver.models.user import User

__all__ = [
    "AuditEvent",
    "AuthorizationCode",
    "AuthorizationRequest",
    "Base",
    "Client",
    "Consent",
    "LoginSession",
    "RefreshToken",
    "RevokedToken",
    "SigningKey",
    "SigningKeyStoreVersion",
    "TokenFamily",
    "User",
]
