"""authctl audit list and user unlock, and the events admin commands record."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from authserver.core.lockout import LockPolicy
from authserver.crud.audit import AuditRepository
from authserver.crud.user import UserRepository
from authserver.services.keystore import keystore_from_settings
from tests.cli.conftest import Cli
from tests.cli.helpers import failed, ok, one_error_line
from tests.factories import make_user


def test_admin_actions_are_audited_with_the_cli_actor(cli: Cli) -> None:
    ok(cli("user", "create", "audrey", "--password-stdin", input="a long passphrase\n"))
    ok(cli("user", "disable", "audrey"))

    events = json.loads(ok(cli("audit", "list", "--user", "audrey", "--json")).stdout)

    assert [e["event"] for e in events] == ["user_disabled", "user_created"]
    assert all(e["actor"].startswith("cli:") for e in events)
    assert all(e["request_id"] for e in events)
    assert events[0]["request_id"] != events[1]["request_id"]  # one id per run
    human = ok(cli("audit", "list")).stdout
    assert "user_disabled" in human and "user_created" in human


def test_audit_list_filters(cli: Cli) -> None:
    ok(cli("user", "create", "bob", "--password-stdin", input="a long passphrase\n"))

    assert json.loads(ok(cli("audit", "list", "--since", "1h", "--json")).stdout)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert json.loads(ok(cli("audit", "list", "--since", later, "--json")).stdout) == []
    only = json.loads(
        ok(cli("audit", "list", "--event", "user_created", "--json")).stdout
    )
    assert {e["event"] for e in only} == {"user_created"}
    assert "--since" in failed(cli("audit", "list", "--since", "soon"))
    assert "no user" in failed(cli("audit", "list", "--user", "nobody"))


BAD_SINCE = {
    "age-overflows-timedelta": "99999999999d",
    "age-before-year-1": "99999999d",
    "superscript-digit": "\N{SUPERSCRIPT TWO}h",
    "arabic-indic-digit": "\N{ARABIC-INDIC DIGIT THREE}h",
    "too-many-digits": "9" * 5000 + "d",
    "empty": "",
    "iso-before-year-1-in-utc": "0001-01-01T00:00+14:00",
}


@pytest.mark.parametrize("since", list(BAD_SINCE.values()), ids=list(BAD_SINCE))
def test_audit_list_rejects_a_bad_since(cli: Cli, since: str) -> None:
    assert one_error_line(cli("audit", "list", "--since", since)).startswith(
        "error: --since "
    )


def test_audit_list_by_the_id_of_a_deleted_user(cli: Cli) -> None:
    created = ok(
        cli(
            "user",
            "create",
            "dora",
            "--password-stdin",
            "--json",
            input="a passphrase\n",
        )
    )
    user_id = json.loads(created.stdout)["id"]
    ok(cli("user", "delete", "dora", "--yes"))

    events = json.loads(ok(cli("audit", "list", "--user", user_id, "--json")).stdout)

    assert [e["event"] for e in events] == ["user_deleted", "user_created"]
    upper = json.loads(
        ok(cli("audit", "list", "--user", user_id.upper(), "--json")).stdout
    )
    assert upper == events
    # A username still goes through the users table, where dora is gone.
    assert one_error_line(cli("audit", "list", "--user", "dora")) == (
        "error: no user 'dora'"
    )


def test_key_rotation_is_audited(cli: Cli) -> None:
    asyncio.run(keystore_from_settings(cli.settings).ensure_signing_key())
    kid = json.loads(ok(cli("key", "rotate", "--json")).stdout)["kid"]

    events = cli.db(lambda s: AuditRepository(s).list(event="key_rotated"))

    assert [e.detail["kid"] for e in events] == [kid]


def test_unlock_clears_a_lock(cli: Cli) -> None:
    user = cli.seed(lambda f: make_user(f, username="carol"))
    policy = LockPolicy(1, timedelta(minutes=5), timedelta(minutes=5))

    async def lock(session):
        repo = UserRepository(session)
        stored = await repo.get(user.id)
        now = datetime.now(UTC)
        counted = await repo.count_attempt(stored, now=now, policy=policy)
        await repo.record_failure(stored, now=now, policy=policy)  # it was wrong
        await session.commit()
        return counted

    assert cli.db(lock) is not None
    shown = ok(cli("user", "show", "carol", "--json")).stdout
    assert json.loads(shown)["locked_until"] is not None

    ok(cli("user", "unlock", "carol"))

    stored = cli.db(lambda s: UserRepository(s).get(user.id))
    assert stored.failed_logins == 0 and stored.locked_until is None
    assert "no user" in failed(cli("user", "unlock", "nobody"))


def test_client_lifecycle_is_audited(cli: Cli) -> None:
    ok(cli("client", "create", "Audited app", "--client-id", "audited-app"))
    ok(cli("client", "delete", "audited-app", "--yes"))

    events = json.loads(ok(cli("audit", "list", "--json")).stdout)
    mine = [e["event"] for e in events if e.get("client_id") == "audited-app"]

    assert mine == ["client_deleted", "client_created"]
