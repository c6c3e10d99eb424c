"""What authctl prints: inert text, one timestamp format, usernames in the audit."""

import json
import re

import pytest

from authserver.crud.audit import AuditRepository
from authserver.crud.client import ClientRepository
from authserver.crud.user import UserRepository
from authserver.db.session import SessionFactory
from authserver.models import AuditEvent
from tests.cli.conftest import Cli
from tests.cli.helpers import ok, one_error_line
from tests.factories import make_client, make_user

# Terminal escapes an attacker might store: clear the screen, retitle the
# window, write the clipboard (OSC 52), a C1 CSI, a bidi override, a newline.
HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07\x9b31m\u202e\n"
# What must never reach the terminal raw: C0 (but the newlines and box lines of
# a table), DEL, C1, bidi controls.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
ISO_SECOND = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def _store_hostile(factory: SessionFactory) -> tuple[str, str]:
    """Hostile strings in every stored field authctl prints, through the
    repositories (as rows written before input was checked would be)."""
    user = await make_user(factory, username="mallory")
    client = (await make_client(factory, client_id="evil-app")).client
    async with factory() as session:
        stored = await UserRepository(session).get(user.id)
        assert stored is not None
        await UserRepository(session).set_email(stored, f"m{HOSTILE}@example.com")
        row = await ClientRepository(session).get_by_client_id(client.client_id)
        assert row is not None
        row.name, row.audience = f"Evil {HOSTILE}", f"https://{HOSTILE}"
        await AuditRepository(session).add(
            AuditEvent(
                event="login_failed",
                actor=f"cli:{HOSTILE}",
                subject=str(user.id),
                client_id=client.client_id,
                ip=f"10.0.0.1{HOSTILE}",
                request_id=f"r{HOSTILE}",
                detail={"reason": HOSTILE},
            )
        )
        await session.commit()
    return str(user.id), client.client_id


COMMANDS = {
    "user-list": ["user", "list"],
    "user-show": ["user", "show", "mallory"],
    "client-list": ["client", "list"],
    "client-show": ["client", "show", "evil-app"],
    "audit-list": ["audit", "list"],
}


@pytest.mark.parametrize("args", list(COMMANDS.values()), ids=list(COMMANDS))
def test_stored_control_characters_reach_the_terminal_escaped(
    cli: Cli, args: list[str]
) -> None:
    cli.seed(_store_hostile)

    result = ok(cli(*args))

    assert not RAW_CONTROL.findall(result.output), ascii(result.output)
    assert "\\x1b" in result.output  # shown, escaped, not dropped


def test_json_output_is_inert_and_round_trips(cli: Cli) -> None:
    cli.seed(_store_hostile)
    for args in (["user", "list", "--json"], ["audit", "list", "--json"]):
        result = ok(cli(*args))
        assert not RAW_CONTROL.findall(result.stdout)
    [user] = json.loads(ok(cli("user", "list", "--json")).stdout)
    assert user["email"] == f"m{HOSTILE}@example.com".lower()  # intact (lowered)


INPUT_REFUSED = {
    "audience": ["client", "create", "App", "--audience", "https://a\x1b[2J"],
    "client-name": ["client", "create", "App\x1b]0;x\x07"],
    "email": ["user", "create", "bob", "--email", "b\x1b@x.org", "--password-stdin"],
}


@pytest.mark.parametrize("args", list(INPUT_REFUSED.values()), ids=list(INPUT_REFUSED))
def test_control_characters_are_refused_at_input(cli: Cli, args: list[str]) -> None:
    line = one_error_line(cli(*args, input="a long passphrase\n"))
    assert not RAW_CONTROL.findall(line), ascii(line)


def test_audit_table_names_users_beside_their_ids(cli: Cli) -> None:
    ok(cli("user", "create", "audrey", "--password-stdin", input="a passphrase\n"))
    [event] = json.loads(ok(cli("audit", "list", "--json")).stdout)
    assert event["subject_username"] == "audrey"

    table = ok(cli("audit", "list")).stdout

    [row] = [line for line in table.splitlines() if "user_created" in line]
    assert event["subject"] in row and "audrey" in row
    assert "Username" in table


def test_one_timestamp_format_in_tables_and_json(cli: Cli) -> None:
    ok(cli("user", "create", "tess", "--password-stdin", input="a passphrase\n"))
    ok(cli("client", "create", "Timed", "--json"))
    [user] = json.loads(ok(cli("user", "list", "--json")).stdout)
    [client] = json.loads(ok(cli("client", "list", "--json")).stdout)
    [*_, event] = json.loads(ok(cli("audit", "list", "--json")).stdout)
    times = [user["created_at"], user["password_changed_at"], client["created_at"]]
    times.append(event["at"])
    assert all(ISO_SECOND.match(moment) for moment in times), times
    assert user["created_at"] in ok(cli("user", "list")).stdout
    assert user["created_at"] in ok(cli("user", "show", "tess")).stdout
    assert client["created_at"] in ok(cli("client", "show", "timed")).stdout
