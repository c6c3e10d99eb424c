"""Client registration data."""

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from authserver.schemas.grant_types import GRANT_TYPES
from authserver.schemas.identifiers import refuse_uuid
from authserver.schemas.scope import validate_scope_tokens
from authserver.schemas.token import MAX_SCOPE

CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{3,100}$")


class ClientCreate(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_id: str = Field(pattern=CLIENT_ID_PATTERN.pattern)
    name: str = Field(min_length=1, max_length=200)
    grant_types: list[str] = Field(min_length=1)
    scopes: list[str] = Field(default_factory=list)
    audience: str | None = Field(None, min_length=1, max_length=255)

    @field_validator("client_id")
    @classmethod
    def _not_a_user_id(cls, value: str) -> str:
        # A client's own token has sub = client_id (RFC 9068 §5).
        return refuse_uuid(value, "client_id")

    @field_validator("grant_types")
    @classmethod
    def _known_grants(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(GRANT_TYPES))
        if unknown:
            raise ValueError(
                f"unknown grant type {unknown[0]!r}; use one of {', '.join(GRANT_TYPES)}"
            )
        if "refresh_token" in value and "password" not in value:
            # Only the password grant issues refresh tokens.
            raise ValueError("refresh_token is of no use without password")
        return sorted(set(value), key=GRANT_TYPES.index)

    @field_validator("scopes")
    @classmethod
    def _scope_syntax(cls, value: list[str]) -> list[str]:
        scopes = validate_scope_tokens(value)
        # Tokens carry the scope, and a request may ask for all of it: the
        # whole set must fit in one scope parameter.
        if len(" ".join(scopes)) > MAX_SCOPE:
            raise ValueError(f"the scopes together exceed {MAX_SCOPE} characters")
        return scopes

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        name = value.strip()
        if not name:
            raise ValueError("the name is blank")
        if not name.isprintable():
            raise ValueError("the name has control characters (a newline?)")
        return name

    @field_validator("audience")
    @classmethod
    def _printable_audience(cls, value: str | None) -> str | None:
        # Shown by authctl and put in every token: never a terminal escape.
        if value is not None and not value.isprintable():
            raise ValueError("the audience has control characters")
        return value
