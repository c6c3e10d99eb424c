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
    ) -> None:
        super().__init__(description, detail=detail)


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


# Authorization-endpoint errors (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6): sent
# to the client's redirect URI, or shown on a page when there is none to trust.
class AccessDeniedError(OAuthError):
    error = "access_denied"
    status_code = 400


class UnsupportedResponseTypeError(OAuthError):
    error = "unsupported_response_type"
    status_code = 400


class LoginRequiredError(OAuthError):
    error = "login_required"
    status_code = 400


class ConsentRequiredError(OAuthError):
    error = "consent_required"
    status_code = 400


class RequestNotSupportedError(OAuthError):
    error = "request_not_supported"
    status_code = 400


class RequestUriNotSupportedError(OAuthError):
    error = "request_uri_not_supported"
    status_code = 400


class RequestTooLargeError(OAuthError):
    error = "invalid_request"
    status_code = 413


class TemporarilyUnavailableError(OAuthError):
    error = "temporarily_unavailable"
    status_code = 503

    def __init__(
        self,
        description: str | None = "the service is temporarily unavailable",
        *,
        detail: str | None = None,
        retry_after: int = 1,
    ) -> None:
        super().__init__(description, detail=detail)
        self.retry_after = retry_after  # seconds, sent as Retry-After


class DatabaseUnavailableError(TemporarilyUnavailableError):
    """The database cannot be reached, or its circuit breaker is open."""


class BearerError(OAuthError):
    """A protected resource refused the request (RFC 6750 §3): a Bearer challenge."""


class UnauthorizedError(BearerError):
    """No bearer token at all: the challenge carries no error code (RFC 6750 §3.1)."""

    error = "unauthorized"
    status_code = 401


class InvalidTokenError(BearerError):
    error = "invalid_token"
    status_code = 401


class InsufficientScopeError(BearerError):
    error = "insufficient_scope"
    status_code = 403

    def __init__(
        self,
        description: str | None = "the access token does not grant this",
        *,
        scope: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(description, detail=detail)
        self.scope = scope  # the scope the request needs, when one would do


class DomainError(Exception):
    """A non-protocol failure with a message safe to show an admin or client."""


class AlreadyExistsError(DomainError):
    pass


class NotFoundError(DomainError):
    pass


class InvalidValueError(DomainError):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the input field at fault, when there is one


class TokenError(Exception):
    """A JWT failed verification; the message says why (for logs only)."""
