"""User data as the API and the CLI accept and show it."""

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
)

from authserver.core.security import password_problem
from authserver.schemas.identifiers import refuse_uuid

USERNAME_PATTERN = r"^[A-Za-z0-9._@+-]{1,150}$"


def _acceptable(password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise ValueError(problem)
    return password


# A password being set (a new user's, a change, an admin's reset): every
# way in, API or authctl, takes it through this type.
NewPassword = Annotated[str, Field(repr=False), AfterValidator(_acceptable)]


class UserCreate(BaseModel):
    model_config = ConfigDict(frozen=True)

    username: str = Field(pattern=USERNAME_PATTERN)
    password: NewPassword
    email: EmailStr | None = None
    is_admin: bool = False

    @field_validator("username")
    @classmethod
    def _not_an_id(cls, value: str) -> str:
        # USER arguments are an id or a username: it would name another account.
        return refuse_uuid(value, "username")


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    email: str | None
    email_verified: bool
    is_active: bool
    is_admin: bool
    created_at: datetime
    updated_at: datetime
    password_changed_at: datetime
    failed_logins: int = 0
    locked_until: datetime | None = None


def username_key(username: str) -> str:
    """The case-insensitive form used for uniqueness and lookups."""
    return unicodedata.normalize("NFKC", username).casefold()
