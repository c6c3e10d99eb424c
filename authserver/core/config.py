"""Settings: every knob of the server, read from AUTH_* variables and `.env`."""

import math
from datetime import timedelta
from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

LOOPBACK_HOSTS = {"localhost"}

# Lifetimes are added to the current time and to each other (token expiry, the
# key store's retire timestamps): an absurd value reaches past datetime's year
# 9999 and fails at the first rotation or sign-in, not at startup. None of them
# needs more than a few years.
MAX_DURATION = timedelta(days=10 * 365)
_TOO_LONG = f"must be at most {int(MAX_DURATION.total_seconds())} seconds (10 years)"


def _seconds(value: object) -> object:
    """Durations are written as plain seconds in the environment ("900")."""
    if isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError("must be a number of seconds") from None
        if not math.isfinite(seconds):
            raise ValueError("must be a finite number of seconds")
        if seconds > MAX_DURATION.total_seconds():
            raise ValueError(_TOO_LONG)  # before timedelta() can overflow
        return seconds
    return value


def _at_most_max(value: timedelta) -> timedelta:
    if value > MAX_DURATION:
        raise ValueError(_TOO_LONG)
    return value


Seconds = Annotated[timedelta, BeforeValidator(_seconds), AfterValidator(_at_most_max)]


class ConfigError(Exception):
    """A setting has a bad value; the message names it in one line."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUTH_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = Field(
        "sqlite+aiosqlite:///./authserver.db",
        description="SQLAlchemy async URL (sqlite+aiosqlite or postgresql+asyncpg).",
    )
    issuer: str = Field(
        "http://localhost:8000",
        description="Public base URL; `iss` of every token and base of every URL.",
    )
    keys_store: Literal["file", "database"] = Field(
        "file",
        description="Where the signing keys live: file (AUTH_KEYS_DIR) or database "
        "(the signing_keys table, sealed with AUTH_KEYS_PASSPHRASE).",
    )
    keys_dir: Path = Field(Path("keys"), description="Signing-key store directory.")
    keys_passphrase: SecretStr | None = Field(
        None,
        description="Encrypts the private keys (file store: when set; database "
        "store: required).",
    )
    keys_previous_passphrases: list[SecretStr] = Field(
        default_factory=list,
        description="Older passphrases (a JSON list) that still decrypt keys until "
        "`authctl key rewrap` re-encrypts them under AUTH_KEYS_PASSPHRASE.",
    )
    access_token_ttl: Seconds = Field(
        timedelta(seconds=900), description="Access-token lifetime (seconds)."
    )
    id_token_ttl: Seconds = Field(
        timedelta(seconds=900), description="ID-token lifetime (seconds)."
    )
    refresh_token_ttl: Seconds = Field(
        timedelta(days=14), description="Refresh-token idle lifetime (seconds)."
    )
    refresh_token_max_lifetime: Seconds = Field(
        timedelta(days=90),
        description="Absolute lifetime of a refresh-token family (seconds).",
    )
    refresh_retry_window: Seconds = Field(
        timedelta(seconds=10),
        description="How long a rotated refresh token may be retried for the "
        "same answer (seconds, 0 turns it off).",
    )
    refresh_token_alg: Literal["RS256", "HS256"] = Field(
        "RS256",
        description="How refresh tokens are signed: RS256 (verifiable with the "
        "JWKS) or HS256 (a MAC only this server can check, cheaper to make). "
        "Changing it ends every outstanding refresh token.",
    )
    default_audience: str | None = Field(
        None,
        description="`aud` of access tokens when the client names none; "
        "defaults to the issuer.",
    )
    bcrypt_rounds: int = Field(12, ge=4, le=31, description="bcrypt cost factor.")
    password_hash_concurrency: int | None = Field(
        None,
        ge=1,
        le=256,
        description="bcrypt hashes one worker process runs at once; more wait "
        "their turn (default: the cores it may use).",
    )
    jwks_max_age: Seconds = Field(
        timedelta(seconds=300),
        description="Cache lifetime of the JWKS document; a rotated key waits "
        "this long before it signs.",
    )
    keystore_check_interval: float = Field(
        1.0, ge=0, description="Seconds between checks of the key store for changes."
    )
    auto_migrate: bool = Field(
        True, description="Apply pending migrations when the server starts."
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest accepted request body."
    )
    http_max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request line plus headers (431 beyond).",
    )
    http_max_headers: int = Field(
        100, ge=16, le=10_000, description="Most header fields a request may send."
    )
    http_header_timeout: Seconds = Field(
        timedelta(seconds=10),
        gt=timedelta(0),
        description="Longest a request's line and headers may take to arrive "
        "(408 and the connection closed).",
    )
    http_body_timeout: Seconds = Field(
        timedelta(seconds=10),
        gt=timedelta(0),
        description="Longest a request body may take to arrive once its headers "
        "are in (408 and the connection closed).",
    )
    http_keep_alive_timeout: Seconds = Field(
        timedelta(seconds=5),
        gt=timedelta(0),
        description="An idle connection, new or between requests, is closed "
        "after this long.",
    )
    http_max_connections: int = Field(
        1000,
        ge=1,
        description="Open connections (or requests in progress) per worker "
        "beyond which a request gets 503 at once.",
    )
    db_pool_size: int = Field(
        20,
        ge=1,
        description="Pooled PostgreSQL connections per worker (plus half as "
        "many short-lived overflow ones under bursts).",
    )
    allow_self_registration: bool = Field(
        False,
        description="Let anyone create a (non-admin) account with "
        "POST /api/v1/users and no token.",
    )
    log_level: str = Field(
        "INFO", description="Root log level: DEBUG, INFO, WARNING or ERROR."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto",
        description="json: one object per line; console: text for humans; "
        "auto: console on a terminal, else json.",
    )
    log_sql: bool = Field(
        False,
        description="Log every SQL statement at INFO, without its parameters or "
        "results (database drivers stay at WARNING whatever the level).",
    )
    db_breaker_failure_threshold: int = Field(
        5,
        ge=1,
        description="Database connection failures in a row that open the "
        "circuit breaker (requests then get 503 at once).",
    )
    db_breaker_recovery_timeout: Seconds = Field(
        timedelta(seconds=30),
        description="Seconds the breaker stays open before requests may try the "
        "database again.",
    )
    health_check_timeout: Seconds = Field(
        timedelta(seconds=2),
        description="Longest /health/ready waits for the database (seconds).",
    )
    metrics_enabled: bool = Field(
        True, description="Serve Prometheus metrics at /metrics."
    )

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("db_breaker_recovery_timeout", "health_check_timeout")
    @classmethod
    def _some_seconds(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive number of seconds")
        return value

    client_cache_ttl: float = Field(
        5.0,
        ge=0,
        description="Seconds a client read at the token endpoint is reused "
        "(0: read every time); client changes reach every process within it.",
    )
    lockout_threshold: int = Field(
        5, ge=0, description="Failed passwords before an account locks (0: never)."
    )
    lockout_base: Seconds = Field(
        timedelta(seconds=30), description="First lock's length; doubles per failure."
    )
    lockout_max: Seconds = Field(
        timedelta(seconds=900), description="Longest lock (seconds)."
    )

    authorization_code_ttl: Seconds = Field(
        timedelta(seconds=60),
        description="Authorization-code lifetime (seconds, at most 60: "
        "RFC 6749 §4.1.2 asks for a short one).",
    )
    authorization_request_ttl: Seconds = Field(
        timedelta(seconds=600),
        description="How long a user has to sign in and consent (seconds).",
    )
    login_session_ttl: Seconds = Field(
        timedelta(hours=8),
        description="Browser sign-in session lifetime (seconds); after it the "
        "user signs in again.",
    )
    templates_dir: Path | None = Field(
        None,
        description="Directory whose templates (login.html, consent.html, ...) "
        "replace the built-in ones of the same name.",
    )

    @field_validator("authorization_code_ttl")
    @classmethod
    def _short_code(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(seconds=60):
            raise ValueError("must be between 1 and 60 seconds")
        return value

    @field_validator(
        "access_token_ttl",
        "id_token_ttl",
        "refresh_token_ttl",
        "refresh_token_max_lifetime",
        "authorization_request_ttl",
        "login_session_ttl",
    )
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator("refresh_retry_window", "jwks_max_age")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value

    @field_validator(
        "keys_passphrase", "default_audience", "templates_dir", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment (RFC 8414 §2)")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("must use https unless the host is loopback")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        # Caught here, a malformed host or port is one line at start-up rather
        # than a traceback at the first connection. The parser's own words are
        # not repeated: they quote pieces of the URL, password included.
        try:
            port = make_url(value).port
        except (ArgumentError, ValueError):
            raise ValueError("malformed host or port") from None
        if port is not None and not 0 < port < 65536:
            raise ValueError("the port must be 1-65535")
        return value

    @model_validator(mode="after")
    def _lifetimes_agree(self) -> Self:
        if self.refresh_token_ttl > self.refresh_token_max_lifetime:
            raise ValueError(
                "AUTH_REFRESH_TOKEN_TTL must not exceed AUTH_REFRESH_TOKEN_MAX_LIFETIME"
            )
        return self

    @model_validator(mode="after")
    def _key_passphrases(self) -> Self:
        if self.keys_previous_passphrases and self.keys_passphrase is None:
            raise ValueError(
                "AUTH_KEYS_PREVIOUS_PASSPHRASES needs AUTH_KEYS_PASSPHRASE (the "
                "one that encrypts)"
            )
        if any(not p.get_secret_value() for p in self.keys_previous_passphrases):
            raise ValueError("AUTH_KEYS_PREVIOUS_PASSPHRASES holds an empty one")
        if self.keys_store == "database" and self.keys_passphrase is None:
            # Private keys in a shared database are sealed, always: a dump or a
            # backup must not be a copy of the signing keys.
            raise ValueError("AUTH_KEYS_STORE=database needs AUTH_KEYS_PASSPHRASE")
        return self

    @property
    def key_passphrases(self) -> list[str]:
        """Every configured passphrase, the one that encrypts first."""
        if self.keys_passphrase is None:
            return []
        return [
            p.get_secret_value()
            for p in (self.keys_passphrase, *self.keys_previous_passphrases)
        ]

    @property
    def audience(self) -> str:
        return self.default_audience or self.issuer

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning a validation failure into one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if not field:  # a rule across settings: the message names them
            raise ConfigError(f"invalid settings: {message}") from None
        raise ConfigError(f"invalid setting AUTH_{field.upper()}: {message}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
