"""Client registration data."""

import re
import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator

from authserver.schemas.scope import validate_scope_tokens

GRANT_TYPES = ("password", "refresh_token", "client_credentials")
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
        # A client's own token has sub = client_id, a user's has sub = the
        # user's UUID: a UUID-shaped client_id could pass for a user at a
        # resource server that reads only `sub` (RFC 9068 §5).
        try:
            uuid.UUID(value)
        except ValueError:
            return value
        raise ValueError("a client_id may not look like a UUID (users' ids are)")

    @field_validator("grant_types")
    @classmethod
    def _known_grants(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(GRANT_TYPES))
        if unknown:
            raise ValueError(
                f"unknown grant type {unknown[0]!r}; use one of {', '.join(GRANT_TYPES)}"
            )
        return sorted(set(value), key=GRANT_TYPES.index)

    @field_validator("scopes")
    @classmethod
    def _scope_syntax(cls, value: list[str]) -> list[str]:
        return validate_scope_tokens(value)
