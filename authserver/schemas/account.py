"""Bodies of the users API (/api/v1/users): what it accepts and returns.

Request bodies forbid unknown fields, so a typo (or a sneaked-in `is_admin`)
is a 422 rather than silently ignored.
"""

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from authserver.core.security import PASSWORD_MAX_LENGTH, password_problem
from authserver.schemas.user import UserCreate, UserRead

MAX_LIST_LIMIT = 100
MAX_OFFSET = 1_000_000_000  # beyond any real table; keeps OFFSET in range


def checked_password(value: str) -> str:
    """The password rules plus: it must be encodable (JSON allows lone surrogates)."""
    problem = password_problem(value)
    if problem:
        raise ValueError(problem)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("password must be valid Unicode text") from None
    return value


class UserCreateRequest(UserCreate):
    """A new user; `is_admin` needs an admin's token even with self-registration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("password")
    @classmethod
    def _encodable(cls, value: str) -> str:
        return checked_password(value)


class ProfileUpdate(BaseModel):
    """PATCH /me: the fields a user may change about themselves."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None


class UserUpdate(BaseModel):
    """PATCH /{id} (admin): only the fields present change; email null removes it."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    is_active: bool | None = None
    is_admin: bool | None = None

    @field_validator("is_active", "is_admin")
    @classmethod
    def _not_null(cls, value: bool | None) -> bool:
        if value is None:
            raise ValueError("must be true or false")
        return value


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=PASSWORD_MAX_LENGTH, repr=False)
    new_password: str = Field(repr=False)

    @field_validator("new_password")
    @classmethod
    def _rules(cls, value: str) -> str:
        return checked_password(value)


class PasswordSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(repr=False)

    @field_validator("password")
    @classmethod
    def _rules(cls, value: str) -> str:
        return checked_password(value)


class UserPage(BaseModel):
    items: list[UserRead]
    total: int
    offset: int
    limit: int


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The one error body of the users API; `errors` only on 422."""

    error: str = Field(examples=["not_found", "conflict", "validation_error"])
    error_description: str | None = None
    errors: list[FieldError] | None = None
