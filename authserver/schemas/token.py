"""Token endpoint request and response bodies (RFC 6749 §4.3, §5.1, §6)."""

from pydantic import BaseModel, ConfigDict, Field

from authserver.schemas.redirect_uri import MAX_REDIRECT_URI

# Bounds on every field: nothing legitimate is longer, and a megabyte string
# must never reach bcrypt or the JWT parser.
MAX_USERNAME = 150
MAX_PASSWORD = 1024
MAX_SCOPE = 1024
MAX_TOKEN = 4096
MAX_CLIENT_ID = 100
MAX_CLIENT_SECRET = 256
MAX_CODE = 256
MAX_CODE_VERIFIER = 128  # RFC 7636 §4.1


class TokenForm(BaseModel):
    """The token request's parameters, each at most once."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    grant_type: str = Field(min_length=1, max_length=100)
    scope: str | None = Field(None, max_length=MAX_SCOPE)
    username: str | None = Field(None, max_length=MAX_USERNAME)
    password: str | None = Field(None, max_length=MAX_PASSWORD)
    refresh_token: str | None = Field(None, max_length=MAX_TOKEN)
    client_id: str | None = Field(None, max_length=MAX_CLIENT_ID)
    client_secret: str | None = Field(None, max_length=MAX_CLIENT_SECRET)
    code: str | None = Field(None, max_length=MAX_CODE)
    redirect_uri: str | None = Field(None, max_length=MAX_REDIRECT_URI)
    code_verifier: str | None = Field(None, max_length=MAX_CODE_VERIFIER)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None


class OAuthErrorResponse(BaseModel):
    error: str
    error_description: str | None = None
