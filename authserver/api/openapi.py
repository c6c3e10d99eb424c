"""OpenAPI descriptions of the form-encoded OAuth endpoints.

Their bodies are parsed by hand (repeated parameters must be refused), so the
schema FastAPI cannot infer is declared here once.
"""

from typing import Any

from authserver.api.oauth_wire import FORM_CONTENT_TYPE

STRING: dict[str, Any] = {"type": "string"}
SECRET: dict[str, Any] = {"type": "string", "format": "password"}
CLIENT_AUTH_FIELDS = {"client_id": STRING, "client_secret": SECRET}


def form_body(required: list[str], **fields: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a form body with these fields plus client_secret_post."""
    schema = {
        "type": "object",
        "required": required,
        "properties": {**fields, **CLIENT_AUTH_FIELDS},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {FORM_CONTENT_TYPE: {"schema": schema}},
        }
    }
