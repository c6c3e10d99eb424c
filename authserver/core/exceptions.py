"""One exception hierarchy for every protocol and domain failure."""

from typing import ClassVar


class OAuthError(Exception):
    """An error rendered as an RFC 6749 §5.2 JSON response."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 500

    def __init__(
        self, description: str | None = None, *, detail: str | None = None
    ) -> None:
        super().__init__(detail or description or self.error)
        self.description = description  # sent to the client: ASCII, no secrets
        self.detail = detail  # logged only


class InvalidRequestError(OAuthError):
    error = "invalid_request"
    status_code = 400


class InvalidClientError(OAuthError):
    error = "invalid_client"
    status_code = 401

    def __init__(
        self,
        description: str | None = "client authentication failed",
        *,
        detail: str | None = None,
        used_basic: bool = False,
    ) -> None:
        super().__init__(description, detail=detail)
        self.used_basic = used_basic


class InvalidGrantError(OAuthError):
    error = "invalid_grant"
    status_code = 400


class UnauthorizedClientError(OAuthError):
    error = "unauthorized_client"
    status_code = 400


class UnsupportedGrantTypeError(OAuthError):
    error = "unsupported_grant_type"
    status_code = 400


class InvalidScopeError(OAuthError):
    error = "invalid_scope"
    status_code = 400


class RequestTooLargeError(OAuthError):
    error = "invalid_request"
    status_code = 413


class TemporarilyUnavailableError(OAuthError):
    error = "temporarily_unavailable"
    status_code = 503


class DomainError(Exception):
    """A non-protocol failure with a message safe to show an admin or client."""


class AlreadyExistsError(DomainError):
    pass


class NotFoundError(DomainError):
    pass


class InvalidValueError(DomainError):
    pass


class TokenError(Exception):
    """A JWT failed verification; the message says why (for logs only)."""
