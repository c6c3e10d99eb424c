"""authctl hashes a password with no transaction open (tests/dbprobe)."""

import pytest

from tests.cli.conftest import Cli
from tests.cli.helpers import ok
from tests.dbprobe import watch_hashes

PASSWORD = "correct horse battery"


def test_user_commands_hash_outside_transactions(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = watch_hashes(monkeypatch, cli.database_url)

    ok(cli("user", "create", "dana", "--password-stdin", input=f"{PASSWORD}\n"))
    ok(cli("user", "set-password", "dana", "--password-stdin", input=f"{PASSWORD}!\n"))

    assert watch.calls == ["hash", "hash"]
    assert watch.held == []
