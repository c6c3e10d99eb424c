"""The OAuth wire format: form bodies and client credentials (RFC 6749 §2.3,
§3.1). Plain functions over bytes and header values, no framework."""

import base64
from typing import Protocol, TypeVar
from urllib.parse import parse_qsl, unquote_plus

from pydantic import BaseModel, ValidationError

from authserver.core.exceptions import InvalidClientError, InvalidRequestError
from authserver.services.clients import ClientCredentials

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# No OAuth request has more than a handful of parameters.
MAX_FORM_FIELDS = 32


def parse_oauth_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The form of an OAuth endpoint: urlencoded UTF-8, each parameter at most once.

    Empty parameters count as omitted (RFC 6749 §3.1).
    """
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        raise InvalidRequestError(f"the body must be {FORM_CONTENT_TYPE}")
    try:
        pairs = parse_qsl(
            body.decode(),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise InvalidRequestError("the body is not valid UTF-8") from None
    except ValueError:  # more fields than max_num_fields
        raise InvalidRequestError("too many parameters") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            # No parameter of ours holds one, and PostgreSQL text cannot.
            raise InvalidRequestError("parameters must not contain NUL characters")
        if name in params:
            raise InvalidRequestError(f"parameter {name[:40]} is repeated")
        params[name] = value
    return {name: value for name, value in params.items() if value != ""}


FormT = TypeVar("FormT", bound=BaseModel)


def validate_oauth_form(model: type[FormT], params: dict[str, str]) -> FormT:
    """The parameters as `model`; the first problem as invalid_request."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "request"
        if error["type"] == "missing":
            raise InvalidRequestError(f"{field} is required") from None
        raise InvalidRequestError(
            f"invalid parameter {field}", detail=error["msg"]
        ) from None


class ClientAuthForm(Protocol):
    """A form that may carry client_secret_post credentials."""

    @property
    def client_id(self) -> str | None: ...

    @property
    def client_secret(self) -> str | None: ...


def client_credentials(
    authorization: str | None, form: ClientAuthForm
) -> ClientCredentials | None:
    """The client credentials of a request, by exactly one method (RFC 6749 §2.3),
    from its Authorization header (if any) and its form."""
    if authorization is None:
        if form.client_id is None:
            return None
        return ClientCredentials(form.client_id, form.client_secret)
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClientError(detail="unsupported authorization scheme")
    if form.client_secret is not None:
        raise InvalidRequestError("use one client authentication method, not two")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    # All ValueErrors: bad base64 (binascii.Error), a header value with
    # non-ASCII characters (b64decode refuses such a str), not UTF-8.
    except ValueError:
        raise InvalidClientError(detail="malformed basic credentials") from None
    raw_id, sep, raw_secret = decoded.partition(":")
    if not sep or not raw_id:
        raise InvalidClientError(detail="malformed basic credentials")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if "\x00" in client_id or "\x00" in secret:
        raise InvalidClientError(detail="NUL in basic credentials")
    if form.client_id is not None and form.client_id != client_id:
        raise InvalidRequestError("client_id in the body differs from the credentials")
    return ClientCredentials(client_id, secret)
