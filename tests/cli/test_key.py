"""authctl key: list, safe rotation and prune on a real key store (no database)."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from authserver.services.keystore import MANIFEST, KeyStore, keystore_from_settings
from tests.cli.conftest import Cli
from tests.cli.helpers import ok, one_error_line


@pytest.fixture
def keys(cli_for: Callable[..., Cli], sqlite_url: str) -> tuple[Cli, KeyStore]:
    """authctl and the key store it manages, holding one signing key."""
    cli = cli_for(sqlite_url)
    store = keystore_from_settings(cli.settings)
    store.ensure_signing_key()
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
    before = datetime.now(UTC)

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
    store.ensure_signing_key(now=long_ago)
    [expired] = store.records()
    current = store.rotate(immediate=True, now=long_ago + timedelta(seconds=1))
    pending = store.rotate()  # a scheduled key is never pruned

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
    encrypted.ensure_signing_key()
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
