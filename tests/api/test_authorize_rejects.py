"""The authorization endpoint's refusals (RFC 6749 §4.1.2.1, RFC 7636, OIDC Core
§3.1.2.6): a page when the client or redirect URI cannot be trusted, otherwise
an error sent to the registered redirect URI with state and iss (RFC 9207)."""

import pytest

from tests.factories import CALLBACK, make_client, make_code_client
from tests.oauth_flow import authorize_params, new_pkce, query_of

ISSUER = "http://localhost"
AUTHORIZE = "/oauth2/authorize"

# Each must be refused with a page and no redirect at all: the URI is not the
# registered one, whatever it resembles (RFC 9700 §4.1: exact match).
UNTRUSTED_REDIRECTS = {
    "unregistered": "https://evil.example/callback",
    "prefix-extended-path": CALLBACK + "/../../evil",
    "suffix-path": CALLBACK + "x",
    "added-query": CALLBACK + "?next=https://evil.example",
    "fragment": CALLBACK + "#frag",
    "userinfo": "https://app.example.com@evil.example/callback",
    "host-suffix": "https://app.example.com.evil.example/callback",
    "other-scheme": CALLBACK.replace("https", "http"),
    "upper-case-host": CALLBACK.replace("app.example.com", "APP.example.com"),
    "trailing-slash": CALLBACK + "/",
    "percent-encoded": CALLBACK.replace("callback", "%63allback"),
    "default-port": CALLBACK.replace("app.example.com", "app.example.com:443"),
    "backslash": "https://app.example.com\\@evil.example/callback",
    "javascript": "javascript:alert(1)",
}


@pytest.mark.parametrize(
    "redirect_uri", list(UNTRUSTED_REDIRECTS.values()), ids=list(UNTRUSTED_REDIRECTS)
)
async def test_untrusted_redirect_uri_gets_a_page_not_a_redirect(
    api, session_factory, redirect_uri
):
    client = await make_code_client(session_factory)
    params = authorize_params(client.client_id, redirect_uri, new_pkce())
    answer = await api.get(AUTHORIZE, params=params)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in answer.text
    assert "not registered" in answer.text


PAGE_ERRORS = {
    "no-client-id": ({"client_id": None}, "client_id is required"),
    "unknown-client": ({"client_id": "nobody-here"}, "unknown client"),
    "no-redirect-uri": ({"redirect_uri": None}, "redirect_uri is required"),
    "repeated-parameter": ({"_repeat": "state"}, "repeated"),
}


@pytest.mark.parametrize(
    ("change", "message"), list(PAGE_ERRORS.values()), ids=list(PAGE_ERRORS)
)
async def test_request_without_trusted_client_gets_a_page(
    api, session_factory, change, message
):
    client = await make_code_client(session_factory)
    params = authorize_params(client.client_id, CALLBACK, new_pkce())
    pairs = [(k, v) for k, v in params.items()]
    for name, value in change.items():
        if name == "_repeat":
            pairs.append((value, "again"))
            continue
        pairs = [(k, v) for k, v in pairs if k != name]
        if value is not None:
            pairs.append((name, value))
    answer = await api.get(AUTHORIZE, params=pairs)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert message in answer.text


REDIRECT_ERRORS = {
    "no-response-type": ({"response_type": None}, "invalid_request"),
    "implicit": ({"response_type": "token"}, "unsupported_response_type"),
    "hybrid": ({"response_type": "code id_token"}, "unsupported_response_type"),
    "no-pkce": ({"code_challenge": None}, "invalid_request"),
    "pkce-method-omitted": ({"code_challenge_method": None}, "invalid_request"),
    "pkce-plain": ({"code_challenge_method": "plain"}, "invalid_request"),
    "pkce-bad-challenge": ({"code_challenge": "short"}, "invalid_request"),
    "scope-not-allowed": ({"scope": "openid admin-not-ours"}, "invalid_scope"),
    "prompt-unknown": ({"prompt": "sometimes"}, "invalid_request"),
    "prompt-none-and-login": ({"prompt": "none login"}, "invalid_request"),
    "max-age-negative": ({"max_age": "-1"}, "invalid_request"),
    "response-mode-fragment": ({"response_mode": "fragment"}, "invalid_request"),
    "request-object": ({"request": "eyJ..."}, "request_not_supported"),
    "request-uri": ({"request_uri": "https://x/y"}, "request_uri_not_supported"),
    "prompt-none-no-session": ({"prompt": "none"}, "login_required"),
}


@pytest.mark.parametrize(
    ("change", "error"), list(REDIRECT_ERRORS.values()), ids=list(REDIRECT_ERRORS)
)
async def test_request_errors_go_back_to_the_client(
    api, session_factory, change, error
):
    client = await make_code_client(session_factory)
    params = authorize_params(client.client_id, CALLBACK, new_pkce())
    for name, value in change.items():
        params.pop(name, None)
        if value is not None:
            params[name] = value
    answer = await api.get(AUTHORIZE, params=params)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(CALLBACK + "?")
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == params["state"]
    assert query["iss"] == ISSUER
    assert "code" not in query


async def test_client_without_the_code_grant_is_unauthorized(api, session_factory):
    client = await make_client(
        session_factory,
        grant_types=("password",),
        redirect_uris=(CALLBACK,),
    )
    params = authorize_params(client.client_id, CALLBACK, new_pkce())
    answer = await api.get(AUTHORIZE, params=params)
    assert query_of(answer.headers["location"])["error"] == "unauthorized_client"


async def test_redirect_uri_query_is_kept(api, session_factory):
    registered = CALLBACK + "?tenant=7"
    client = await make_code_client(session_factory, redirect_uris=(registered,))
    params = authorize_params(client.client_id, registered, new_pkce(), prompt="none")
    answer = await api.get(AUTHORIZE, params=params)
    query = query_of(answer.headers["location"])
    assert query["tenant"] == "7"
    assert query["error"] == "login_required"


async def test_post_form_is_accepted_like_get(api, session_factory):
    client = await make_code_client(session_factory)
    params = authorize_params(client.client_id, CALLBACK, new_pkce(), prompt="none")
    answer = await api.post(AUTHORIZE, data=params)
    assert answer.status_code == 303
    assert query_of(answer.headers["location"])["error"] == "login_required"
