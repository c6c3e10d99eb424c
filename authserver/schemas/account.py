"""Bodies of the users API (/api/v1/users): what it accepts and returns.

Request bodies forbid unknown fields, so a typo (or a sneaked-in `is_admin`)
is a 422 rather than silently ignored.
"""

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from authserver.core.security import PASSWORD_MAX_LENGTH
from authserver.schemas.user import NewPassword, UserCreate, UserRead

MAX_LIST_LIMIT = 100
MAX_OFFSET = 1_000_000_000  # beyond any real table; keeps OFFSET in range


class UserCreateRequest(UserCreate):
    """A new user; `is_admin` needs an admin's token even with self-registration."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    new_password: NewPassword


class PasswordSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: NewPassword


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
