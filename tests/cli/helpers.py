"""Assertions and subprocess helpers for the authctl tests."""

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import Result

from authserver.core.security import make_password_context, verify_password
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.db.session import SessionFactory
from authserver.models import RefreshToken, TokenFamily
from tests.conftest import TEST_ISSUER


def cli_env(database_url: str, keys_dir: Path) -> dict[str, str]:
    """The AUTH_* environment of a test invocation (the rest are defaults)."""
    return {
        "AUTH_DATABASE_URL": database_url,
        "AUTH_KEYS_DIR": str(keys_dir),
        "AUTH_ISSUER": TEST_ISSUER,
        "AUTH_BCRYPT_ROUNDS": "4",
        "AUTH_KEYSTORE_CHECK_INTERVAL": "0",
    }


# --- assertions -------------------------------------------------------------------


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def failed(result: Result, code: int = 1) -> str:
    """Assert an expected failure: exit `code`, no traceback; return stderr."""
    assert result.exit_code == code, (result.output, result.exception)
    # CliRunner records an uncaught exception as the result's exception (also
    # exit 1): an expected failure must leave through SystemExit instead.
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output, result.output
    return result.stderr


def one_error_line(result: Result) -> str:
    """The single `error: ...` line an expected failure prints on stderr."""
    stderr = failed(result)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert result.stdout == ""
    return lines[0]


# --- the installed console script ---------------------------------------------------


def authctl_path() -> str:
    """The `authctl` console script installed next to this interpreter."""
    script = Path(sys.executable).parent / "authctl"
    if not script.exists():
        pytest.fail(f"authctl is not installed next to {sys.executable}")
    return str(script)


def clean_environ(extra: dict[str, str]) -> dict[str, str]:
    """os.environ without the developer's AUTH_* settings, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    return {**base, **extra}


def run_authctl(
    *args: str, env: dict[str, str], cwd: Path, input: str | None = None
) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [authctl_path(), *args],
        env=clean_environ(env),
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- database checks ------------------------------------------------------------


async def add_refresh_token(
    factory: SessionFactory, user_id: uuid.UUID, client_pk: uuid.UUID
) -> str:
    """A live refresh-token record for the user at the client; returns its jti."""
    now = datetime.now(UTC)
    family = TokenFamily(
        id=uuid.uuid4(),
        user_id=user_id,
        client_id=client_pk,
        created_at=now,
        expires_at=now + timedelta(days=30),
    )
    record = RefreshToken(
        jti=str(uuid.uuid4()),
        family_id=family.id,
        user_id=user_id,
        client_id=client_pk,
        scope="openid",
        auth_time=now,
        issued_at=now,
        expires_at=now + timedelta(days=1),
    )
    async with factory() as session:
        await RefreshTokenRepository(session).add_family(family)
        await RefreshTokenRepository(session).add(record)
        await session.commit()
    return record.jti


def password_matches(password: str, password_hash: str) -> bool:
    return verify_password(make_password_context(4), password, password_hash)[0]
