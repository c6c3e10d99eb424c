"""Token revocation request (RFC 7009 §2.1)."""

from pydantic import BaseModel, ConfigDict, Field

from authserver.schemas.token import MAX_CLIENT_ID, MAX_CLIENT_SECRET, MAX_TOKEN


class RevocationForm(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str = Field(min_length=1, max_length=MAX_TOKEN)
    token_type_hint: str | None = Field(None, max_length=100)
    client_id: str | None = Field(None, max_length=MAX_CLIENT_ID)
    client_secret: str | None = Field(None, max_length=MAX_CLIENT_SECRET)
