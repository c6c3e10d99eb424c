"""One exception hierarchy for every protocol and domain failure."""

import logging
from typing import ClassVar

REALM = "authserver"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class AuthServerError(Exception):
    """The root of every failure this server raises on purpose."""


class OAuthError(AuthServerError):
    """An error rendered as an RFC 6749 §5.2 JSON response, with its own headers."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 500
    # How loudly the error renderer logs it: a client's mistake is a warning.
    log_level: ClassVar[int] = logging.WARNING

    def __init__(
        self, description: str | None = None, *, detail: str | None = None
    ) -> None:
        super().__init__(detail or description or self.error)
        self.description = description  # sent to the client: ASCII, no secrets
        self.detail = detail  # logged only

    @property
    def headers(self) -> dict[str, str]:
        """The response headers this error calls for (never cached)."""
        return dict(NO_STORE)


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

    @property
    def headers(self) -> dict[str, str]:
        # RFC 9110 §15.5.2: every 401 carries a challenge; Basic is the scheme
        # the token endpoint accepts, whichever way the client tried (RFC 6749
        # §5.2 requires it when the client used the Authorization header).
        return {**super().headers, "WWW-Authenticate": f'Basic realm="{REALM}"'}


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

    @property
    def headers(self) -> dict[str, str]:
        return {**super().headers, "Retry-After": str(self.retry_after)}


class DatabaseUnavailableError(TemporarilyUnavailableError):
    """The database cannot be reached, or its circuit breaker is open."""


class KeyStoreUnavailableError(TemporarilyUnavailableError):
    """The signing keys cannot be read (a damaged or unreadable key store).

    Unlike an outage it does not pass by itself: an operator repairs the
    store, so it is logged as an error. `detail` names the key and the file or
    row at fault, never key material or a passphrase.
    """

    log_level = logging.ERROR


class BearerError(OAuthError):
    """A protected resource refused the request (RFC 6750 §3): a Bearer challenge."""

    @property
    def headers(self) -> dict[str, str]:
        return {**super().headers, "WWW-Authenticate": self.challenge()}

    def challenge(self) -> str:
        """The RFC 6750 §3 challenge for this error."""
        return _bearer_challenge(self._challenge_params())

    def _challenge_params(self) -> dict[str, str]:
        params = {"realm": REALM, "error": self.error}
        if self.description:
            params["error_description"] = self.description
        return params


class MissingTokenError(BearerError):
    """No bearer token at all (RFC 6750 §3.1): the challenge carries no error
    code; the body says invalid_request, the one RFC 6750 code that fits."""

    error = "invalid_request"
    status_code = 401

    def _challenge_params(self) -> dict[str, str]:
        return {"realm": REALM}


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

    def _challenge_params(self) -> dict[str, str]:
        params = super()._challenge_params()
        if self.scope:
            params["scope"] = self.scope
        return params


def _bearer_challenge(params: dict[str, str]) -> str:
    # Values are our own ASCII words; dropping quotes keeps the header well formed.
    rendered = ", ".join(
        f'{name}="{value.replace(chr(34), "").replace(chr(92), "")}"'
        for name, value in params.items()
    )
    return f"Bearer {rendered}"


class DomainError(AuthServerError):
    """A non-protocol failure with a message safe to show an admin or client."""


class AlreadyExistsError(DomainError):
    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        # What the HTTP API says: vaguer where the message would tell a
        # stranger about someone else's account (which field is taken).
        self.public = public or message


class NotFoundError(DomainError):
    pass


class InvalidValueError(DomainError):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field  # the input field at fault, when there is one


class TokenError(AuthServerError):
    """A JWT failed verification; the message says why (for logs only)."""
