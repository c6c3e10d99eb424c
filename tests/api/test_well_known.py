"""JWKS (RFC 7517) and discovery (RFC 8414, OpenID Connect Discovery)."""

import pytest


async def test_jwks_is_cacheable_with_etag(api):
    response = await api.get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert keys and all(
        k["use"] == "sig" and k["alg"] == "RS256" and k["kid"] for k in keys
    )
    assert not any({"d", "p", "q"} & k.keys() for k in keys)

    again = await api.get(
        "/.well-known/jwks.json", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == response.headers["etag"]

    stale = await api.get(
        "/.well-known/jwks.json", headers={"If-None-Match": '"other"'}
    )
    assert stale.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"],
)
async def test_discovery_documents(api, path):
    doc = (await api.get(path)).json()

    assert doc["issuer"] == "http://localhost"
    assert doc["token_endpoint"] == "http://localhost/oauth2/token"
    assert doc["jwks_uri"] == "http://localhost/.well-known/jwks.json"
    assert {"authorization_code", "password", "refresh_token"} <= set(
        doc["grant_types_supported"]
    )
    assert doc["authorization_endpoint"] == "http://localhost/oauth2/authorize"
    assert doc["end_session_endpoint"] == "http://localhost/oauth2/logout"
    assert doc["response_types_supported"] == ["code"]
    assert doc["response_modes_supported"] == ["query"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "openid" in doc["scopes_supported"]
    # Every published URL derives from the issuer.
    assert all(
        v.startswith(doc["issuer"])
        for k, v in doc.items()
        if k.endswith(("_endpoint", "_uri"))
    )


async def test_unknown_path_is_json_404(api):
    response = await api.get("/nope")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ],
)
async def test_head_is_get_without_the_body(api, path):
    get = await api.get(path)
    head = await api.head(path)

    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    for name in ("content-type", "cache-control"):
        assert head.headers[name] == get.headers[name]


async def test_discovery_is_cacheable_like_the_jwks(api):
    jwks = await api.get("/.well-known/jwks.json")
    discovery = await api.get("/.well-known/openid-configuration")

    assert discovery.headers["cache-control"] == jwks.headers["cache-control"]
    assert discovery.headers["cache-control"].startswith("public, max-age=")
