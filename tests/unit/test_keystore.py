"""The file key store: first key, rotation timeline, pruning, encryption, sharing."""

import json
import multiprocessing
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from authserver.services.keystore import KeyStore, KeyStoreError, KeyTiming

TIMING = KeyTiming(
    jwks_max_age=timedelta(minutes=5),
    token_ttl=timedelta(minutes=15),
    refresh_max_lifetime=timedelta(days=90),
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def store(directory: Path, passphrase: str | None = None) -> KeyStore:
    return KeyStore(directory, timing=TIMING, passphrase=passphrase, check_interval=0)


def published_kids(keystore: KeyStore, now: datetime) -> set[str]:
    return {k["kid"] for k in json.loads(keystore.view(now).jwks_json)["keys"]}


def test_first_key_is_created_once_with_private_permissions(tmp_path):
    keystore = store(tmp_path)

    assert keystore.ensure_signing_key(T0) is True
    assert keystore.ensure_signing_key(T0) is False

    [record] = keystore.records()
    pem = tmp_path / f"{record.kid}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert keystore.view(T0).signing_key.kid == record.kid


def _ensure(directory: str) -> bool:
    return store(Path(directory)).ensure_signing_key()


def test_concurrent_processes_create_exactly_one_key(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        created = pool.map(_ensure, [str(tmp_path)] * 8)

    assert created.count(True) == 1
    assert len(store(tmp_path).records()) == 1
    assert len(list(tmp_path.glob("*.pem"))) == 1


def test_jwks_has_no_private_parts(tmp_path):
    keystore = store(tmp_path)
    keystore.ensure_signing_key(T0)

    [key] = json.loads(keystore.view(T0).jwks_json)["keys"]

    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()


def test_rotation_timeline(tmp_path):
    keystore = store(tmp_path)
    keystore.ensure_signing_key(T0)
    old = keystore.records()[0].kid

    new = keystore.rotate(now=T0)

    # Published at once, signing only after the JWKS cache lifetime.
    assert published_kids(keystore, T0) == {old, new.kid}
    assert keystore.view(T0).signing_key.kid == old
    switch = T0 + TIMING.jwks_max_age
    assert keystore.view(switch).signing_key.kid == new.kid
    # The old key stays published while tokens it signed live, plus the cache.
    still = switch + TIMING.token_ttl + TIMING.jwks_max_age - timedelta(seconds=1)
    assert published_kids(keystore, still) == {old, new.kid}
    gone = switch + TIMING.token_ttl + TIMING.jwks_max_age
    assert published_kids(keystore, gone) == {new.kid}
    # ...and still verifies (its refresh tokens) until the family lifetime passes.
    assert keystore.view(gone).verify_keys.get_by_kid(old)


def test_refresh_mac_keys_live_and_die_with_their_signing_keys(tmp_path):
    # Every process derives the same MAC key from the shared key files, so a
    # refresh token minted by one worker (or server) verifies at any other.
    server, other = store(tmp_path), store(tmp_path)
    server.ensure_signing_key(T0)
    old = server.view(T0)
    assert old.refresh_key.kid == old.signing_key.kid
    assert other.view(T0).refresh_key.raw_value == old.refresh_key.raw_value
    assert len(old.refresh_key.raw_value) == 32

    new = other.rotate(immediate=True, now=T0)

    current = server.view(T0)
    assert current.refresh_key.kid == new.kid
    assert current.refresh_key.raw_value != old.refresh_key.raw_value
    # The retired key's refresh tokens still verify, as its signatures do...
    gone = T0 + TIMING.token_ttl + TIMING.jwks_max_age
    assert server.view(gone).refresh_verify_keys.get_by_kid(old.signing_key.kid)
    # ...until nothing it made can be valid and it is pruned.
    server.prune(now=T0 + TIMING.refresh_max_lifetime + timedelta(seconds=1))
    later = T0 + TIMING.refresh_max_lifetime + timedelta(seconds=2)
    kids = {k.kid for k in server.view(later).refresh_verify_keys.keys}
    assert kids == {new.kid}


def test_an_encrypted_key_file_yields_the_same_refresh_mac_key(tmp_path):
    keystore = store(tmp_path, passphrase="s3cret-pass")
    keystore.ensure_signing_key(T0)

    again = store(tmp_path, passphrase="s3cret-pass").view(T0).refresh_key

    assert again.raw_value == keystore.view(T0).refresh_key.raw_value


def test_rotate_now_signs_immediately(tmp_path):
    keystore = store(tmp_path)
    keystore.ensure_signing_key(T0)

    new = keystore.rotate(immediate=True, now=T0)

    assert keystore.view(T0).signing_key.kid == new.kid


def test_prune_removes_only_keys_nothing_can_need(tmp_path):
    keystore = store(tmp_path)
    keystore.ensure_signing_key(T0)
    old = keystore.records()[0].kid
    new = keystore.rotate(immediate=True, now=T0)

    assert keystore.prune(now=T0 + timedelta(days=1)) == []
    pruned = keystore.prune(now=T0 + TIMING.refresh_max_lifetime + timedelta(seconds=1))

    assert [r.kid for r in pruned] == [old]
    assert [r.kid for r in keystore.records()] == [new.kid]
    assert not (tmp_path / f"{old}.pem").exists()


def test_another_process_sees_a_rotation(tmp_path):
    server = store(tmp_path)
    server.ensure_signing_key(T0)
    server.view(T0)
    admin = store(tmp_path)

    new = admin.rotate(immediate=True, now=T0)

    assert server.view(T0).signing_key.kid == new.kid


def test_passphrase_encrypts_key_files(tmp_path):
    keystore = store(tmp_path, passphrase="s3cret-pass")
    keystore.ensure_signing_key(T0)
    [record] = keystore.records()

    pem = (tmp_path / f"{record.kid}.pem").read_text()

    assert "ENCRYPTED" in pem
    assert (
        store(tmp_path, passphrase="s3cret-pass").view(T0).signing_key.kid == record.kid
    )
    with pytest.raises(KeyStoreError, match="AUTH_KEYS_PASSPHRASE"):
        store(tmp_path, passphrase="wrong").view(T0)
    with pytest.raises(KeyStoreError):
        store(tmp_path).view(T0)


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(KeyStoreError, match="no key manifest"):
        store(tmp_path / "absent").view(T0)


def test_rotate_now_after_a_scheduled_rotation_supersedes_it(tmp_path):
    keystore = store(tmp_path)
    keystore.ensure_signing_key(T0)
    first = keystore.records()[0].kid
    scheduled = keystore.rotate(now=T0)

    immediate = keystore.rotate(immediate=True, now=T0 + timedelta(seconds=1))

    later = T0 + timedelta(seconds=1) + TIMING.jwks_max_age * 2
    assert keystore.view(later).signing_key.kid == immediate.kid
    records = {r.kid: r for r in keystore.records()}
    assert records[first].signing_until == immediate.signing_from
    assert records[scheduled.kid].signing_until == immediate.signing_from
