"""Validating an authorization request (RFC 6749 §4.1.1, §4.1.2.1, RFC 7636
§4.3, OIDC Core §3.1.2.1, §3.1.2.6) and answering it on the redirect URI.

Errors come in two kinds (RFC 6749 §4.1.2.1): before the client and its
redirect URI are established, an OAuthError is shown to the user and nothing
is redirected; after, a RedirectError carries the error back to the client.
"""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authserver.core.exceptions import (
    InvalidRequestError,
    InvalidScopeError,
    OAuthError,
    RequestNotSupportedError,
    RequestUriNotSupportedError,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
)
from authserver.core.security import PKCE_CHALLENGE
from authserver.crud.client import ClientRepository
from authserver.models import Client
from authserver.services.grants.common import requested_scopes

GRANT_TYPE = "authorization_code"
PROMPTS = frozenset({"none", "login", "consent"})
MAX_STATE = 1024
MAX_NONCE = 512
MAX_LOGIN_HINT = 150
MAX_MAX_AGE = 10 * 365 * 86400


class RedirectError(Exception):
    """An error for the client, sent to its (verified) redirect URI."""

    def __init__(self, error: OAuthError, redirect_uri: str, state: str | None):
        super().__init__(error.detail or error.description or error.error)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True)
class AuthorizationParams:
    """A validated authorization request."""

    client: Client
    redirect_uri: str
    scopes: list[str]
    scope_explicit: bool
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None

    def fail(self, error: OAuthError) -> RedirectError:
        return RedirectError(error, self.redirect_uri, self.state)


Fail = Callable[[OAuthError], RedirectError]


async def validate_request(
    params: dict[str, str], clients: ClientRepository
) -> AuthorizationParams:
    """The request's parameters, checked in the order RFC 6749 §4.1.2.1 needs."""
    client_id = params.get("client_id")
    if not client_id:
        raise InvalidRequestError("client_id is required")
    client = await clients.get_by_client_id(client_id[:100])
    if client is None:
        raise InvalidRequestError("unknown client", detail=f"client {client_id[:40]}")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise InvalidRequestError("redirect_uri is required")
    # Exact string comparison (RFC 9700 §4.1.3): no prefix, no normalisation.
    if redirect_uri not in client.redirect_uris:
        raise InvalidRequestError(
            "redirect_uri is not registered for this client",
            detail=f"client {client.client_id}",
        )
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE:
        # Not echoed: the client gets the error without its oversized state.
        raise RedirectError(
            InvalidRequestError("state is too long"), redirect_uri, None
        )

    def fail(error: OAuthError) -> RedirectError:
        return RedirectError(error, redirect_uri, state)

    if GRANT_TYPE not in client.grant_types:
        raise fail(UnauthorizedClientError("this client may not use the code flow"))
    if "request" in params:
        raise fail(RequestNotSupportedError("request objects are not supported"))
    if "request_uri" in params:
        raise fail(RequestUriNotSupportedError("request_uri is not supported"))
    response_type = params.get("response_type")
    if response_type is None:
        raise fail(InvalidRequestError("response_type is required"))
    if response_type != "code":
        raise fail(UnsupportedResponseTypeError("only response_type=code"))
    if params.get("response_mode", "query") != "query":
        raise fail(InvalidRequestError("only response_mode=query is supported"))
    challenge = params.get("code_challenge")
    if challenge is None:
        raise fail(InvalidRequestError("code_challenge is required (PKCE, S256)"))
    # RFC 7636 §4.3: an omitted method means "plain", which we refuse.
    if params.get("code_challenge_method") != "S256":
        raise fail(InvalidRequestError("code_challenge_method must be S256"))
    if not PKCE_CHALLENGE.fullmatch(challenge):
        raise fail(InvalidRequestError("code_challenge is not a S256 challenge"))
    try:
        scopes = requested_scopes(params.get("scope"), client)
    except InvalidScopeError as exc:
        raise fail(exc) from None
    return AuthorizationParams(
        client=client,
        redirect_uri=redirect_uri,
        scopes=scopes,
        scope_explicit="scope" in params,
        state=state,
        nonce=_bounded(params, "nonce", MAX_NONCE, fail),
        code_challenge=challenge,
        prompt=_prompt(params.get("prompt"), fail),
        max_age=_max_age(params.get("max_age"), fail),
        login_hint=_bounded(params, "login_hint", MAX_LOGIN_HINT, fail),
    )


def _bounded(params: dict[str, str], name: str, limit: int, fail: Fail) -> str | None:
    value = params.get(name)
    if value is not None and len(value) > limit:
        raise fail(InvalidRequestError(f"{name} is too long"))
    return value


def _prompt(value: str | None, fail: Fail) -> frozenset[str]:
    prompt = frozenset((value or "").split())
    if prompt - PROMPTS:
        raise fail(InvalidRequestError("prompt may be none, login or consent"))
    if "none" in prompt and len(prompt) > 1:
        # OIDC Core §3.1.2.1: none with any other value is an error.
        raise fail(InvalidRequestError("prompt=none goes alone"))
    return prompt


def _max_age(value: str | None, fail: Fail) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) > MAX_MAX_AGE:
        raise fail(InvalidRequestError("max_age must be a number of seconds"))
    return int(value)


def error_url(error: RedirectError, issuer: str) -> str:
    """The client's redirect URI with the error (RFC 6749 §4.1.2.1, RFC 9207)."""
    return redirect_url(
        error.redirect_uri,
        {
            "error": error.error.error,
            "error_description": error.error.description,
            "state": error.state,
            "iss": issuer,
        },
    )


def redirect_url(base: str, params: dict[str, str | None]) -> str:
    """`base` with `params` added to its query, which is kept (RFC 6749 §3.1.2)."""
    parts = urlsplit(base)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(name, value) for name, value in params.items() if value is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))
