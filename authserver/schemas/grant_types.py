"""The grant types a client may be registered for (RFC 6749 §4, §6)."""

GRANT_TYPES = ("authorization_code", "password", "refresh_token", "client_credentials")
