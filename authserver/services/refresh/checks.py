"""What a presented refresh token may still do: verified claims, scope rules.

Whether the token is live is the database's to say (crud.liveness), inside the
statement that rotates it; this module holds only what needs no database.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from authserver.core.exceptions import InvalidGrantError, InvalidScopeError, TokenError
from authserver.models import Client
from authserver.schemas.scope import parse_scope
from authserver.services.tokens import LOGIN_SESSION_CLAIM, TokenService

INVALID = "refresh token is invalid, expired or revoked"


def verified_claims(
    tokens: TokenService, presented: str, client: Client, *, now: datetime
) -> dict[str, Any]:
    """The claims of a refresh token we signed for this client; else invalid_grant."""
    try:
        claims = tokens.verify_refresh(presented, now=now)
    except TokenError as exc:
        raise InvalidGrantError(INVALID, detail=str(exc)) from None
    if claims["client_id"] != client.client_id:
        raise InvalidGrantError(INVALID, detail="another client's refresh token")
    return claims


def timestamp(value: object) -> datetime:
    """A NumericDate claim we wrote (an integer) as a datetime."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidGrantError(INVALID, detail="a timestamp claim is not an integer")
    return datetime.fromtimestamp(value, UTC)


def login_session(claims: dict[str, Any]) -> uuid.UUID | None:
    """The browser session the token's family came from; None for a family
    the password grant made."""
    value = claims.get(LOGIN_SESSION_CLAIM)
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidGrantError(INVALID, detail="login_sid is no UUID") from None


def narrow(requested: str | None, granted: list[str]) -> list[str]:
    """RFC 6749 §6: the new scope may narrow the original, never widen it."""
    if requested is None:
        return granted
    scopes = parse_scope(requested)
    if scopes is None:
        raise InvalidScopeError("malformed scope")
    if any(s not in granted for s in scopes):
        raise InvalidScopeError("scope exceeds the original grant")
    return scopes


def asks_for(requested_scope: str | None, answered_scope: str) -> bool:
    """Whether a retry's scope parameter asks for what the answer grants
    (no parameter asks for the original request's scope, whatever it was)."""
    if requested_scope is None:
        return True
    requested = parse_scope(requested_scope)
    return requested is not None and set(requested) == set(answered_scope.split())
