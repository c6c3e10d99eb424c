"""The UserInfo response (OpenID Connect Core §5.3.2), claims by granted scope."""

from pydantic import BaseModel


class UserInfo(BaseModel):
    sub: str
    preferred_username: str | None = None  # scope `profile`
    email: str | None = None  # scope `email`, when the user has one
    email_verified: bool | None = None
