"""RP-Initiated Logout 1.0: check what a logout request names before the
session ends and the browser is sent anywhere."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authserver.core.exceptions import InvalidRequestError, TokenError
from authserver.crud.client import ClientRepository
from authserver.models import Client
from authserver.schemas.token import MAX_TOKEN
from authserver.services.tokens import TokenService

MAX_STATE = 1024


@dataclass(frozen=True)
class LogoutRequest:
    client: Client | None
    # Registered for `client` (checked): where to send the browser afterwards.
    redirect_uri: str | None
    state: str | None
    # The `sub` of a valid id_token_hint: the RP says whom it signs out.
    hint_subject: str | None


async def validate_logout(
    params: dict[str, str],
    tokens: TokenService,
    clients: ClientRepository,
    *,
    now: datetime,
) -> LogoutRequest:
    """The request's parameters (§2), or InvalidRequestError shown to the user:
    a logout never redirects to a URI it could not verify."""
    claims = _hint_claims(params.get("id_token_hint"), tokens, now)
    audiences = _audiences(claims) if claims else []
    client_id = params.get("client_id")
    if claims is not None and client_id is not None and client_id not in audiences:
        raise InvalidRequestError("client_id does not match the id_token_hint")
    if client_id is None and len(audiences) == 1:
        client_id = audiences[0]
    client = await clients.get_by_client_id(client_id[:100]) if client_id else None
    if client_id is not None and client is None:
        raise InvalidRequestError("unknown client", detail=f"client {client_id[:40]}")
    uri = params.get("post_logout_redirect_uri")
    if uri is not None:
        if client is None:
            raise InvalidRequestError(
                "post_logout_redirect_uri needs client_id or id_token_hint"
            )
        if uri not in client.post_logout_redirect_uris:
            raise InvalidRequestError(
                "post_logout_redirect_uri is not registered for this client"
            )
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE:
        raise InvalidRequestError("state is too long")
    subject = claims.get("sub") if claims else None
    return LogoutRequest(
        client, uri, state, subject if isinstance(subject, str) else None
    )


def _hint_claims(
    hint: str | None, tokens: TokenService, now: datetime
) -> dict[str, Any] | None:
    if hint is None:
        return None
    if len(hint) > MAX_TOKEN:
        raise InvalidRequestError("id_token_hint is not valid")
    try:
        return tokens.verify_id_hint(hint, now=now)
    except TokenError as exc:
        raise InvalidRequestError(
            "id_token_hint is not valid", detail=str(exc)
        ) from None


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []
