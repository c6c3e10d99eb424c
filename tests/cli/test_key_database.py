"""authctl key on the database store: import a file store, the same commands,
rewrap under a new passphrase, export back to files (SQLite and PostgreSQL)."""

import asyncio
import json
from collections.abc import Callable

from sqlalchemy import select

from authserver.models import SigningKey
from authserver.services.keystore import MANIFEST, file_keystore
from tests.cli.conftest import Cli
from tests.cli.helpers import ok, one_error_line

PASSPHRASE = "the first passphrase of this store"
NEW_PASSPHRASE = "the second passphrase of this store"


def database_store(cli_for: Callable[..., Cli], cli: Cli, **env: str) -> Cli:
    # cli_for's variables stay set for the test: name every one each time.
    defaults = {
        "AUTH_KEYS_PASSPHRASE": PASSPHRASE,
        "AUTH_KEYS_PREVIOUS_PASSPHRASES": "[]",
    }
    return cli_for(cli.database_url, AUTH_KEYS_STORE="database", **{**defaults, **env})


def listed(cli: Cli) -> list[dict[str, object]]:
    result: list[dict[str, object]] = json.loads(
        ok(cli("key", "list", "--json")).stdout
    )
    return result


def kek_ids(cli: Cli) -> set[str]:
    async def query(session: object) -> set[str]:
        rows = await session.scalars(select(SigningKey.kek_id))  # type: ignore[attr-defined]
        return set(rows.all())

    return cli.db(query)


def test_a_file_store_moves_into_the_database_and_back(
    cli: Cli, cli_for: Callable[..., Cli]
) -> None:
    files = file_keystore(cli.settings, cli.keys_dir, passphrases=[])
    asyncio.run(files.ensure_signing_key())
    asyncio.run(files.rotate())
    from_files = listed(cli)
    db = database_store(cli_for, cli)

    imported = json.loads(
        ok(db("key", "import", str(cli.keys_dir), "--unencrypted", "--json")).stdout
    )

    assert imported == [k["kid"] for k in from_files]
    assert listed(db) == from_files  # the same keys, the same states
    before = kek_ids(db)
    assert len(before) == 1

    rotated = json.loads(ok(db("key", "rotate", "--now", "--json")).stdout)
    assert [k["kid"] for k in listed(db) if k["signing"]] == [rotated["kid"]]
    revoked = json.loads(ok(db("key", "revoke", imported[0], "--yes", "--json")).stdout)
    assert revoked == {"revoked": imported[0], "signing_key": None}

    # A new passphrase: the old one still opens until rewrap, then not needed.
    both = database_store(
        cli_for,
        cli,
        AUTH_KEYS_PASSPHRASE=NEW_PASSPHRASE,
        AUTH_KEYS_PREVIOUS_PASSPHRASES=json.dumps([PASSPHRASE]),
    )
    rewrapped = json.loads(ok(both("key", "rewrap", "--json")).stdout)
    assert sorted(rewrapped) == sorted(k["kid"] for k in listed(both))
    after = kek_ids(both)
    assert len(after) == 1 and after != before
    only_new = database_store(cli_for, cli, AUTH_KEYS_PASSPHRASE=NEW_PASSPHRASE)
    keys = listed(only_new)

    out = cli.keys_dir.parent / "exported"
    result = ok(only_new("key", "export", str(out)))

    assert "PRIVATE" not in result.stdout
    assert out.stat().st_mode & 0o777 == 0o700
    assert all(
        p.stat().st_mode & 0o777 == 0o600 for p in out.iterdir() if p.name != ".lock"
    )
    assert all(b"ENCRYPTED PRIVATE KEY" in p.read_bytes() for p in out.glob("*.pem"))
    served = cli_for(
        cli.database_url,
        AUTH_KEYS_STORE="file",
        AUTH_KEYS_DIR=str(out),
        AUTH_KEYS_PASSPHRASE=NEW_PASSPHRASE,
        AUTH_KEYS_PREVIOUS_PASSPHRASES="[]",
    )
    assert listed(served) == keys
    assert (out / MANIFEST).is_file()


def test_import_changes_nothing_when_a_source_key_does_not_open(
    cli: Cli, cli_for: Callable[..., Cli]
) -> None:
    files = file_keystore(cli.settings, cli.keys_dir, passphrases=["another one"])
    asyncio.run(files.ensure_signing_key())
    [record] = asyncio.run(files.records())
    db = database_store(cli_for, cli)

    line = one_error_line(db("key", "import", str(cli.keys_dir)))

    assert f"key {record.kid}" in line and "AUTH_KEYS_PASSPHRASE" in line
    assert "another one" not in line and PASSPHRASE not in line
    assert listed(db) == []


def test_import_refuses_a_store_that_holds_keys(
    cli: Cli, cli_for: Callable[..., Cli]
) -> None:
    files = file_keystore(cli.settings, cli.keys_dir, passphrases=[PASSPHRASE])
    asyncio.run(files.ensure_signing_key())
    db = database_store(cli_for, cli)
    ok(db("key", "import", str(cli.keys_dir)))
    before = listed(db)

    line = one_error_line(db("key", "import", str(cli.keys_dir)))

    assert "already holds 1 key(s)" in line
    assert listed(db) == before


def test_the_database_store_needs_a_passphrase(
    cli: Cli, cli_for: Callable[..., Cli]
) -> None:
    db = cli_for(cli.database_url, AUTH_KEYS_STORE="database")

    line = one_error_line(db("key", "list"))
    cli_for(cli.database_url, AUTH_KEYS_STORE="file")  # for the fixture's cleanup

    assert "AUTH_KEYS_STORE=database needs AUTH_KEYS_PASSPHRASE" in line
