"""Client registration data."""

import re
from dataclasses import dataclass, field
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from authserver.schemas.grant_types import GRANT_TYPES
from authserver.schemas.identifiers import refuse_uuid
from authserver.schemas.redirect_uri import redirect_uri_problem
from authserver.schemas.scope import validate_scope_tokens
from authserver.schemas.token import MAX_SCOPE

# Grants that issue refresh tokens: refresh_token is of no use without one.
USER_GRANTS = frozenset({"authorization_code", "password"})
MAX_REDIRECT_URIS = 20
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._~-]{3,100}$")


class ClientCreate(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_id: str = Field(pattern=CLIENT_ID_PATTERN.pattern)
    name: str = Field(min_length=1, max_length=200)
    grant_types: list[str] = Field(min_length=1)
    scopes: list[str] = Field(default_factory=list)
    audience: str | None = Field(None, min_length=1, max_length=255)
    redirect_uris: list[str] = Field(default_factory=list, max_length=MAX_REDIRECT_URIS)
    post_logout_redirect_uris: list[str] = Field(
        default_factory=list, max_length=MAX_REDIRECT_URIS
    )
    is_third_party: bool = False

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
        if "refresh_token" in value and not USER_GRANTS & set(value):
            raise ValueError(
                "refresh_token is of no use without authorization_code or password"
            )
        return sorted(set(value), key=GRANT_TYPES.index)

    @field_validator("redirect_uris", "post_logout_redirect_uris")
    @classmethod
    def _registrable_uris(cls, value: list[str]) -> list[str]:
        for uri in value:
            problem = redirect_uri_problem(uri)
            if problem:
                raise ValueError(f"redirect URI {uri[:100]!r} {problem}")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _code_flow_needs_redirect(self) -> Self:
        if "authorization_code" in self.grant_types and not self.redirect_uris:
            raise ValueError("authorization_code needs at least one redirect URI")
        return self

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


@dataclass(frozen=True)
class UriChanges:
    """A change to a list of URIs: a new list (`replace`), then `add`, `remove`."""

    replace: list[str] | None = None
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.replace is not None or bool(self.add or self.remove)


@dataclass(frozen=True)
class ClientChanges:
    """What an update changes in a registration; None (or no UriChanges) keeps
    a field. The result is checked as a whole by ClientCreate's rules; the
    client_id and the secret are not among the fields."""

    name: str | None = None
    grant_types: list[str] | None = None
    scopes: list[str] | None = None
    redirect_uris: UriChanges = field(default_factory=UriChanges)
    post_logout_redirect_uris: UriChanges = field(default_factory=UriChanges)
    is_third_party: bool | None = None

    def __bool__(self) -> bool:
        return any(
            (
                self.name is not None,
                self.grant_types is not None,
                self.scopes is not None,
                self.redirect_uris,
                self.post_logout_redirect_uris,
                self.is_third_party is not None,
            )
        )
