"""Token introspection request and response (RFC 7662 §2.1, §2.2)."""

from pydantic import BaseModel, ConfigDict, Field

from authserver.schemas.token import MAX_CLIENT_ID, MAX_CLIENT_SECRET, MAX_TOKEN


class IntrospectionForm(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str = Field(min_length=1, max_length=MAX_TOKEN)
    token_type_hint: str | None = Field(None, max_length=100)
    client_id: str | None = Field(None, max_length=MAX_CLIENT_ID)
    client_secret: str | None = Field(None, max_length=MAX_CLIENT_SECRET)


class IntrospectionResponse(BaseModel):
    """Serialised without None fields: an inactive token is exactly {"active": false}."""

    active: bool
    scope: str | None = None
    client_id: str | None = None
    username: str | None = None
    token_type: str | None = None
    exp: int | None = None
    iat: int | None = None
    sub: str | None = None
    aud: str | None = None
    iss: str | None = None
    jti: str | None = None
