"""authctl key: list, safe rotation and prune on a real key store (no database)."""

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from authserver.crud.audit import AuditRepository
from authserver.services.keystore import MANIFEST, KeyStore, keystore_from_settings
from tests.cli.conftest import Cli
from tests.cli.helpers import failed, ok, one_error_line


@pytest.fixture
def keys(cli_for: Callable[..., Cli], sqlite_url: str) -> tuple[Cli, KeyStore]:
    """authctl and the key store it manages, holding one signing key."""
    cli = cli_for(sqlite_url)
    store = keystore_from_settings(cli.settings)
    asyncio.run(store.ensure_signing_key())
    return cli, store


def listed(cli: Cli) -> list[dict[str, object]]:
    result: list[dict[str, object]] = json.loads(
        ok(cli("key", "list", "--json")).stdout
    )
    return result


def published_kids(store: KeyStore) -> set[str]:
    return {key["kid"] for key in json.loads(store.view().jwks_json)["keys"]}


def test_list(keys: tuple[Cli, KeyStore]) -> None:
    cli, store = keys
    [key] = listed(cli)
    assert key["alg"] == "RS256"
    assert key["state"] == "active" and key["signing"] is True
    assert key["published"] is True
    assert key["signing_until"] is None and key["retain_until"] is None
    human = ok(cli("key", "list")).stdout
    assert str(key["kid"]) in human and "active (signing)" in human


def test_rotate_publishes_now_and_signs_after_the_jwks_lifetime(
    keys: tuple[Cli, KeyStore],
) -> None:
    cli, store = keys
    old_kid = store.view().signing_key.kid
    before = datetime.now(UTC).replace(microsecond=0)  # authctl shows seconds

    body = json.loads(ok(cli("key", "rotate", "--json")).stdout)

    starts = datetime.fromisoformat(body["signing_from"])
    max_age = cli.settings.jwks_max_age
    assert before + max_age <= starts <= datetime.now(UTC) + max_age
    assert body["state"] == "pending" and body["signing"] is False
    assert body["published"] is True
    [retired] = body["retired"]
    assert retired["kid"] == old_kid
    assert retired["signing_until"] == body["signing_from"]
    assert retired["signing"] is True  # until the new key takes over
    # The old key signs on; both are in the JWKS right away.
    assert store.view().signing_key.kid == old_kid
    assert published_kids(store) == {old_kid, body["kid"]}
    states = {k["kid"]: (k["state"], k["signing"]) for k in listed(cli)}
    assert states == {old_kid: ("active", True), body["kid"]: ("pending", False)}


def test_rotate_now_signs_at_once_and_keeps_the_old_key_published(
    keys: tuple[Cli, KeyStore],
) -> None:
    cli, store = keys
    old_kid = store.view().signing_key.kid
    result = ok(cli("key", "rotate", "--now"))
    new_kid = result.stdout.split()[2]
    assert "signing now" in result.stdout
    assert f"key {old_kid} signs until" in result.stdout
    assert "may reject tokens" in result.stderr  # the caveat of skipping the wait
    assert store.view().signing_key.kid == new_kid != old_kid
    assert published_kids(store) == {old_kid, new_kid}


def test_prune_removes_only_expired_keys(
    cli_for: Callable[..., Cli], sqlite_url: str
) -> None:
    cli = cli_for(sqlite_url)
    store = keystore_from_settings(cli.settings)
    long_ago = datetime.now(UTC) - timedelta(days=365)
    asyncio.run(store.ensure_signing_key(now=long_ago))
    [expired] = asyncio.run(store.records())
    current = asyncio.run(
        store.rotate(immediate=True, now=long_ago + timedelta(seconds=1))
    )
    pending = asyncio.run(store.rotate())  # a scheduled key is never pruned

    assert json.loads(ok(cli("key", "prune", "--json")).stdout) == [expired.kid]
    assert not (cli.keys_dir / f"{expired.kid}.pem").exists()
    assert {k["kid"] for k in listed(cli)} == {current.kid, pending.kid}
    assert ok(cli("key", "prune")).stdout.strip() == "nothing to prune"


def test_prune_output(keys: tuple[Cli, KeyStore]) -> None:
    cli, _ = keys
    assert json.loads(ok(cli("key", "prune", "--json")).stdout) == []


@pytest.mark.parametrize(
    "args", [["list"], ["rotate"], ["rotate", "--now"], ["prune"]], ids=" ".join
)
def test_missing_key_store(
    cli_for: Callable[..., Cli], sqlite_url: str, args: list[str]
) -> None:
    cli = cli_for(sqlite_url)
    line = one_error_line(cli("key", *args))
    assert "no key store in" in line and "AUTH_KEYS_DIR" in line
    assert not (cli.keys_dir / MANIFEST).exists()  # nothing made by mistake


def test_wrong_passphrase(cli_for: Callable[..., Cli], sqlite_url: str) -> None:
    cli = cli_for(sqlite_url, AUTH_KEYS_PASSPHRASE="the wrong one")
    timing = keystore_from_settings(cli.settings).timing
    encrypted = KeyStore(cli.keys_dir, timing=timing, passphrase="the right one")
    asyncio.run(encrypted.ensure_signing_key())
    line = one_error_line(cli("key", "list"))
    assert "AUTH_KEYS_PASSPHRASE" in line
    assert "the wrong one" not in line


def test_corrupt_manifest(keys: tuple[Cli, KeyStore]) -> None:
    cli, _ = keys
    (cli.keys_dir / MANIFEST).write_text("{not json")
    assert "corrupt key manifest" in one_error_line(cli("key", "rotate"))


def test_rotate_now_supersedes_a_scheduled_rotation(
    keys: tuple[Cli, KeyStore],
) -> None:
    cli, store = keys
    ok(cli("key", "rotate"))  # scheduled: the old key still signs
    ok(cli("key", "rotate", "--now"))  # ...and this one takes over at once
    rows = ok(cli("key", "list")).stdout
    assert rows.count("active (signing)") == 1
    # Both earlier keys stop signing when the immediate one starts.
    assert [k["state"] for k in listed(cli)].count("retired") == 2
    assert "superseded" not in rows
    assert sum(k["signing"] is True for k in listed(cli)) == 1


# --- a key command that cannot read every key changes nothing -------------------

RIGHT = "the right one"


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file of the key store with its bytes."""
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def encrypted_store(cli: Cli) -> str:
    """Two keys encrypted with RIGHT in cli's key store; returns the first kid."""
    timing = keystore_from_settings(cli.settings).timing
    store = KeyStore(cli.keys_dir, timing=timing, passphrase=RIGHT)
    asyncio.run(store.ensure_signing_key())
    asyncio.run(store.rotate(immediate=True))
    return asyncio.run(store.records())[0].kid


# fault: (AUTH_KEYS_PASSPHRASE of the command, delete the key file?, message)
UNREADABLE = {
    "wrong-passphrase": (
        "the wrong one",
        False,
        "encrypted, and AUTH_KEYS_PASSPHRASE does not decrypt it",
    ),
    "passphrase-unset": (None, False, "encrypted, but AUTH_KEYS_PASSPHRASE is not set"),
    "key-file-missing": (RIGHT, True, "file missing, though manifest.json lists"),
}


@pytest.mark.parametrize(
    "args", [["rotate"], ["rotate", "--now"], ["prune"]], ids=" ".join
)
@pytest.mark.parametrize(
    ("passphrase", "delete", "message"), list(UNREADABLE.values()), ids=list(UNREADABLE)
)
def test_refuses_to_change_a_store_it_cannot_read(
    cli: Cli,
    cli_for: Callable[..., Cli],
    args: list[str],
    passphrase: str | None,
    delete: bool,
    message: str,
) -> None:
    kid = encrypted_store(cli)
    pem = cli.keys_dir / f"{kid}.pem"
    if delete:
        pem.unlink()
    before = snapshot(cli.keys_dir)
    env = {"AUTH_KEYS_PASSPHRASE": passphrase} if passphrase else {}
    admin = cli_for(cli.database_url, **env)

    line = one_error_line(admin("key", *args))

    assert snapshot(cli.keys_dir) == before  # same manifest, no new key file
    assert f"key {kid} ({pem})" in line and message in line
    assert "key store unchanged" in line
    assert "the wrong one" not in line and RIGHT not in line
    assert admin.db(lambda s: AuditRepository(s).list()) == []
    # A server with the right passphrase still loads the store as it was.
    timing = keystore_from_settings(admin.settings).timing
    if not delete:
        assert KeyStore(cli.keys_dir, timing=timing, passphrase=RIGHT).view()


def test_rotate_keeps_an_encrypted_store_encrypted(
    cli_for: Callable[..., Cli], sqlite_url: str
) -> None:
    admin = cli_for(sqlite_url, AUTH_KEYS_PASSPHRASE=RIGHT)
    encrypted_store(admin)

    kid = json.loads(ok(admin("key", "rotate", "--json")).stdout)["kid"]

    assert b"ENCRYPTED" in (admin.keys_dir / f"{kid}.pem").read_bytes()
    assert len(listed(admin)) == 3


def _garbage(keys_dir: Path, kid: str) -> None:
    (keys_dir / f"{kid}.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nMIIE")


def _missing(keys_dir: Path, kid: str) -> None:
    (keys_dir / f"{kid}.pem").unlink()


def _no_alg(keys_dir: Path, kid: str) -> None:
    data = json.loads((keys_dir / MANIFEST).read_text())
    del data["keys"][0]["alg"]
    (keys_dir / MANIFEST).write_text(json.dumps(data))


# fault: (damage to the store, what the error says after the kid)
DAMAGED = {
    "pem-garbage": (_garbage, "{pem}): not a valid PEM private key"),
    "pem-missing": (_missing, "{pem}): file missing, though manifest.json lists"),
    "manifest-field-missing": (
        _no_alg,
        "{manifest}: key {kid}: field 'alg' is missing",
    ),
}


@pytest.mark.parametrize(
    ("damage", "message"), list(DAMAGED.values()), ids=list(DAMAGED)
)
@pytest.mark.parametrize("args", [["list"], ["rotate"]], ids=" ".join)
def test_a_damaged_store_is_one_precise_line(
    keys: tuple[Cli, KeyStore],
    damage: Callable[[Path, str], None],
    message: str,
    args: list[str],
) -> None:
    cli, store = keys
    [record] = asyncio.run(store.records())
    damage(cli.keys_dir, record.kid)
    before = snapshot(cli.keys_dir)

    line = one_error_line(cli("key", *args))

    pem, manifest = cli.keys_dir / f"{record.kid}.pem", cli.keys_dir / MANIFEST
    assert message.format(pem=pem, manifest=manifest, kid=record.kid) in line
    assert record.kid in line
    assert "AUTH_KEYS_PASSPHRASE" not in line  # no passphrase is involved
    assert snapshot(cli.keys_dir) == before


def test_a_lifetime_too_long_is_a_config_error(
    cli_for: Callable[..., Cli], sqlite_url: str
) -> None:
    cli = cli_for(sqlite_url)
    asyncio.run(keystore_from_settings(cli.settings).ensure_signing_key())
    before = snapshot(cli.keys_dir)
    cli = cli_for(sqlite_url, AUTH_REFRESH_TOKEN_MAX_LIFETIME="8000000000000")

    line = one_error_line(cli("key", "rotate"))

    assert "invalid setting AUTH_REFRESH_TOKEN_MAX_LIFETIME" in line
    assert snapshot(cli.keys_dir) == before


def test_revoke_withdraws_a_key_at_once(cli: Cli) -> None:
    store = keystore_from_settings(cli.settings)
    asyncio.run(store.ensure_signing_key())
    old = store.view().signing_key.kid

    result = ok(cli("key", "revoke", old, "--yes", "--json"))

    body = json.loads(result.stdout)
    assert body["revoked"] == old and body["signing_key"] not in (None, old)
    assert store.view().signing_key.kid == body["signing_key"]
    assert published_kids(store) == {body["signing_key"]}
    assert not (cli.keys_dir / f"{old}.pem").exists()
    events = cli.db(lambda s: AuditRepository(s).list(event="key_revoked"))
    assert [e.detail["kid"] for e in events] == [old]


def test_revoke_says_what_it_did_and_what_caches_may_still_do(
    keys: tuple[Cli, KeyStore],
) -> None:
    cli, store = keys
    old = store.view().signing_key.kid
    new = json.loads(ok(cli("key", "rotate", "--now", "--json")).stdout)["kid"]

    result = ok(cli("key", "revoke", old, "--yes"))

    assert result.stdout.strip() == f"revoked key {old}"  # the signer stays
    assert "cached JWKS" in result.stderr
    assert store.view().signing_key.kid == new


def test_revoke_asks_first_and_refuses_unknown_keys(
    keys: tuple[Cli, KeyStore],
) -> None:
    cli, store = keys
    kid = store.view().signing_key.kid
    manifest = (cli.keys_dir / MANIFEST).read_bytes()

    unanswered = cli("key", "revoke", kid)  # no terminal, no --yes
    unknown = cli("key", "revoke", "nope", "--yes")

    last_line = failed(unanswered).strip().splitlines()[-1]  # after the question
    assert last_line.startswith("error: no answer, nothing changed")
    assert one_error_line(unknown).startswith("error: no key nope")
    assert (cli.keys_dir / MANIFEST).read_bytes() == manifest


def test_a_key_store_others_can_read_is_refused_for_writing(
    keys: tuple[Cli, KeyStore],
) -> None:
    cli, store = keys
    [pem] = cli.keys_dir.glob("*.pem")
    cli.keys_dir.chmod(0o755)
    pem.chmod(0o644)
    before = snapshot(cli.keys_dir)

    for args in (["rotate"], ["prune"], ["rewrap"]):
        line = one_error_line(cli("key", *args))
        assert "open to other users" in line, args
        assert f"{cli.keys_dir} mode 0755" in line and f"{pem} mode 0644" in line
        assert f"chmod 700 {cli.keys_dir}" in line
    assert snapshot(cli.keys_dir) == before

    listing = ok(cli("key", "list"))  # reading still works, with a warning
    assert "warning: key store" in listing.stderr
    assert "open to other users" in listing.stderr
