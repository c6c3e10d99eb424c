"""The redaction rules: what a log line may never contain, however it got there."""

import pytest

from authserver.core.redaction import REDACTED, is_sensitive_key, redact, scrub_text

JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"
PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
    "-----END PRIVATE KEY-----"
)

TEXT_CASES = {
    "jwt": (f"token {JWT} rejected", JWT),
    "jwe-five-parts": ("x eyJhbGciOiJ.eyJlbmMi.a2V5.aXY.dGFn y", "eyJlbmMi.a2V5"),
    "basic-header": ("Authorization: Basic YXBwOnMzY3JldA==", "YXBwOnMzY3JldA=="),
    "bearer-header": ("authorization: bearer abc.def-ghi", "abc.def-ghi"),
    "query-string": ("/cb?code=Xy1&access_token=T0k&state=ok", "T0k"),
    "form-body": ("grant_type=password&password=hunter2&scope=a", "hunter2"),
    "client-secret-form": ("client_secret=s3cr3t&client_id=app", "s3cr3t"),
    "repr-dict": ("{'password': 'hun\\'ter2', 'username': 'al'}", "hun\\'ter2"),
    "json-dict": ('{"refresh_token": "opaque-value", "scope": "a"}', "opaque-value"),
    "pydantic-input": ("{'loc': ('body', 'password'), 'input': 'hunter2'}", "hunter2"),
    "pem": (f"key:\n{PEM}\nend", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
    "pem-truncated": ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB", "MIIEpAIB"),
}


@pytest.mark.parametrize(
    ("text", "secret"), list(TEXT_CASES.values()), ids=list(TEXT_CASES)
)
def test_scrub_text_masks(text, secret):
    assert secret not in scrub_text(text)


def test_scrub_text_keeps_ordinary_words():
    text = "grant_type=password&scope=openid client_id=app token_type=Bearer"
    assert scrub_text(text) == text


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_password",
        "client_secret",
        "secret_hash",
        "refresh_token",
        "access_token",
        "id_token",
        "token",
        "Authorization",
        "set-cookie",
        "private_key",
        "keys_passphrase",
        "code",
    ],
)
def test_sensitive_keys(key):
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["jti", "client_id", "grant_type", "token_type", "status_code", "error"]
)
def test_ordinary_keys(key):
    assert not is_sensitive_key(key)


def test_redact_nested_structures():
    data = {
        "headers": {"Authorization": "Basic abc", "Accept": "json"},
        "form": [{"password": "pw"}, f"Bearer {JWT}"],
        "jti": "1234",
        "count": 3,
        "none_secret": None,
    }

    clean = redact(data)

    assert clean["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert clean["form"][0] == {"password": REDACTED}
    assert JWT not in clean["form"][1]
    assert clean["jti"] == "1234" and clean["count"] == 3
    assert clean["none_secret"] is None
