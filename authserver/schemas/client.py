"""Client registration data."""

import re

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
