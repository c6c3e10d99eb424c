"""Settings: defaults, and one clear line naming a bad setting."""

from pathlib import Path

import pytest

from authserver.core.config import ConfigError, load_settings

BAD = {
    "ttl-not-a-number": ({"access_token_ttl": "soon"}, "AUTH_ACCESS_TOKEN_TTL"),
    "ttl-negative": ({"access_token_ttl": "-5"}, "AUTH_ACCESS_TOKEN_TTL"),
    "lifetime-past-year-9999": (
        {"refresh_token_max_lifetime": "8000000000000"},
        "AUTH_REFRESH_TOKEN_MAX_LIFETIME",
    ),
    "duration-over-ten-years": ({"jwks_max_age": "315360001"}, "AUTH_JWKS_MAX_AGE"),
    "duration-infinite": ({"lockout_max": "inf"}, "AUTH_LOCKOUT_MAX"),
    "http-issuer-public-host": ({"issuer": "http://auth.example.com"}, "AUTH_ISSUER"),
    "issuer-with-query": ({"issuer": "https://auth.example.com/?x=1"}, "AUTH_ISSUER"),
    "sync-driver": ({"database_url": "sqlite:///x.db"}, "AUTH_DATABASE_URL"),
    "db-port-not-a-number": (
        {"database_url": "postgresql+asyncpg://u:s3cret@127.0.0.1:notaport/x"},
        "AUTH_DATABASE_URL",
    ),
    "db-port-out-of-range": (
        {"database_url": "postgresql+asyncpg://u:s3cret@127.0.0.1:99999/x"},
        "AUTH_DATABASE_URL",
    ),
    "db-host-unclosed-bracket": (
        {"database_url": "postgresql+asyncpg://u:s3cret@[::1:5432/x"},
        "AUTH_DATABASE_URL",
    ),
    "bcrypt-too-low": ({"bcrypt_rounds": "3"}, "AUTH_BCRYPT_ROUNDS"),
    "no-hash-threads": (
        {"password_hash_concurrency": "0"},
        "AUTH_PASSWORD_HASH_CONCURRENCY",
    ),
}


@pytest.mark.parametrize(("values", "name"), list(BAD.values()), ids=list(BAD))
def test_bad_value_names_the_setting(values, name, monkeypatch):
    for key, value in values.items():
        monkeypatch.setenv(f"AUTH_{key.upper()}", value)

    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)

    message = str(caught.value)
    assert message.startswith(f"invalid setting {name}:")
    assert "\n" not in message
    assert "s3cret" not in message


def test_defaults(monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("AUTH_"):
            monkeypatch.delenv(key)

    settings = load_settings(_env_file=None)

    assert settings.issuer == "http://localhost:8000"
    assert settings.access_token_ttl.total_seconds() == 900
    assert settings.refresh_token_ttl.days == 14
    assert settings.refresh_token_max_lifetime.days == 90
    assert settings.bcrypt_rounds == 12
    assert settings.password_hash_concurrency is None  # the usable cores
    assert settings.audience == settings.issuer
    assert settings.database_url.startswith("sqlite+aiosqlite:///")


def test_https_issuer_and_trailing_slash(monkeypatch):
    monkeypatch.setenv("AUTH_ISSUER", "https://auth.example.com/")

    assert load_settings(_env_file=None).issuer == "https://auth.example.com"


def test_env_example_is_a_valid_configuration(monkeypatch):
    """Every line of .env.example parses: the documented defaults really work."""
    for key in list(__import__("os").environ):
        if key.startswith("AUTH_"):
            monkeypatch.delenv(key)
    example = Path(__file__).parents[2] / ".env.example"

    from_file = load_settings(_env_file=example)

    assert from_file == load_settings(_env_file=None)


@pytest.mark.parametrize("name", ["AUTH_ACCESS_TOKEN_TTL", "AUTH_REFRESH_RETRY_WINDOW"])
def test_durations_are_seconds(name, monkeypatch):
    monkeypatch.setenv(name, "42")

    settings = load_settings(_env_file=None)

    assert getattr(settings, name.removeprefix("AUTH_").lower()).total_seconds() == 42


def test_durations_are_capped_at_ten_years(monkeypatch):
    monkeypatch.setenv("AUTH_REFRESH_TOKEN_MAX_LIFETIME", str(10 * 365 * 86400))
    assert load_settings(_env_file=None).refresh_token_max_lifetime.days == 3650

    monkeypatch.setenv("AUTH_REFRESH_TOKEN_MAX_LIFETIME", "8000000000000")
    with pytest.raises(ConfigError, match="at most 315360000 seconds"):
        load_settings(_env_file=None)


KEY_PASSPHRASE_RULES = {
    "database-store-needs-one": (
        {"AUTH_KEYS_STORE": "database"},
        "AUTH_KEYS_STORE=database needs AUTH_KEYS_PASSPHRASE",
    ),
    "previous-without-current": (
        {"AUTH_KEYS_PREVIOUS_PASSPHRASES": '["old one"]'},
        "AUTH_KEYS_PREVIOUS_PASSPHRASES needs AUTH_KEYS_PASSPHRASE",
    ),
    "empty-previous": (
        {"AUTH_KEYS_PASSPHRASE": "new one", "AUTH_KEYS_PREVIOUS_PASSPHRASES": '[""]'},
        "AUTH_KEYS_PREVIOUS_PASSPHRASES holds an empty one",
    ),
}


@pytest.mark.parametrize(
    ("values", "message"),
    list(KEY_PASSPHRASE_RULES.values()),
    ids=list(KEY_PASSPHRASE_RULES),
)
def test_key_passphrase_rules(values, message, monkeypatch):
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)

    assert str(caught.value).startswith(f"invalid settings: {message}")
    assert "old one" not in str(caught.value)


def test_key_passphrases_put_the_encrypting_one_first(monkeypatch):
    monkeypatch.setenv("AUTH_KEYS_PASSPHRASE", "new one")
    monkeypatch.setenv("AUTH_KEYS_PREVIOUS_PASSPHRASES", '["old one", "older one"]')

    settings = load_settings(_env_file=None)

    assert settings.key_passphrases == ["new one", "old one", "older one"]
    assert "old one" not in repr(settings)  # secrets, as the rest
