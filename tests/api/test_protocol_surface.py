"""Every endpoint is announced: both discovery documents and the OpenAPI schema."""

import pytest

ISSUER = "http://localhost"
DISCOVERY_URLS = [
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
]


@pytest.mark.parametrize("url", DISCOVERY_URLS, ids=["openid", "oauth"])
async def test_discovery_lists_the_endpoints(api, url):
    document = (await api.get(url)).json()

    assert document["revocation_endpoint"] == f"{ISSUER}/oauth2/revoke"
    assert document["introspection_endpoint"] == f"{ISSUER}/oauth2/introspect"
    assert document["userinfo_endpoint"] == f"{ISSUER}/oauth2/userinfo"
    assert document["users_endpoint"] == f"{ISSUER}/api/v1/users"
    assert "client_credentials" in document["grant_types_supported"]
    assert document["revocation_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    assert document["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert {"preferred_username", "email", "email_verified"} <= set(
        document["claims_supported"]
    )


async def test_openapi_documents_the_new_endpoints(api):
    schema = (await api.get("/openapi.json")).json()
    paths = schema["paths"]

    expected = {
        "/oauth2/revoke": {"post"},
        "/oauth2/introspect": {"post"},
        "/oauth2/userinfo": {"get", "post"},
        "/api/v1/users/me": {"get", "patch"},
        "/api/v1/users/me/password": {"post"},
        "/api/v1/users": {"get", "post"},
        "/api/v1/users/{user_id}": {"get", "patch", "delete"},
        "/api/v1/users/{user_id}/password": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    grant_enum = paths["/oauth2/token"]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"
    ]["schema"]["properties"]["grant_type"]["enum"]
    assert "client_credentials" in grant_enum
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert paths["/api/v1/users/me"]["get"]["security"] == [{"bearer": []}]
    revoke_form = paths["/oauth2/revoke"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in revoke_form


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/oauth2/token", "POST"),
        ("/oauth2/userinfo", "GET, POST"),
        ("/api/v1/users", "GET, POST"),
        ("/api/v1/users/me", "GET, PATCH, DELETE"),
        ("/health/live", "GET, HEAD"),
    ],
)
async def test_405_names_every_method_the_path_serves(api, path, allowed):
    response = await api.request("PUT", path)

    assert response.status_code == 405
    assert response.headers["allow"] == allowed
