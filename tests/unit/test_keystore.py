"""The file key store: first key, rotation timeline, pruning, encryption, sharing."""

import asyncio
import json
import multiprocessing
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from authserver.services.keystore import MANIFEST, KeyStore, KeyStoreError, KeyTiming

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


async def test_first_key_is_created_once_with_private_permissions(tmp_path):
    keystore = store(tmp_path)

    assert await keystore.ensure_signing_key(T0) is True
    assert await keystore.ensure_signing_key(T0) is False

    [record] = await keystore.records()
    pem = tmp_path / f"{record.kid}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert keystore.view(T0).signing_key.kid == record.kid


def _ensure(directory: str) -> bool:
    return asyncio.run(store(Path(directory)).ensure_signing_key())


async def test_concurrent_processes_create_exactly_one_key(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        created = pool.map(_ensure, [str(tmp_path)] * 8)

    assert created.count(True) == 1
    assert len(await store(tmp_path).records()) == 1
    assert len(list(tmp_path.glob("*.pem"))) == 1


async def test_jwks_has_no_private_parts(tmp_path):
    keystore = store(tmp_path)
    await keystore.ensure_signing_key(T0)

    [key] = json.loads(keystore.view(T0).jwks_json)["keys"]

    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()


async def test_rotation_timeline(tmp_path):
    keystore = store(tmp_path)
    await keystore.ensure_signing_key(T0)
    old = (await keystore.records())[0].kid

    new = await keystore.rotate(now=T0)

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


async def test_refresh_mac_keys_live_and_die_with_their_signing_keys(tmp_path):
    # Every process derives the same MAC key from the shared key files, so a
    # refresh token minted by one worker (or server) verifies at any other.
    server, other = store(tmp_path), store(tmp_path)
    await server.ensure_signing_key(T0)
    old = server.view(T0)
    assert old.refresh_key.kid == old.signing_key.kid
    assert other.view(T0).refresh_key.raw_value == old.refresh_key.raw_value
    assert len(old.refresh_key.raw_value) == 32

    new = await other.rotate(immediate=True, now=T0)

    current = server.view(T0)
    assert current.refresh_key.kid == new.kid
    assert current.refresh_key.raw_value != old.refresh_key.raw_value
    # The retired key's refresh tokens still verify, as its signatures do...
    gone = T0 + TIMING.token_ttl + TIMING.jwks_max_age
    assert server.view(gone).refresh_verify_keys.get_by_kid(old.signing_key.kid)
    # ...until nothing it made can be valid and it is pruned.
    await server.prune(now=T0 + TIMING.refresh_max_lifetime + timedelta(seconds=1))
    later = T0 + TIMING.refresh_max_lifetime + timedelta(seconds=2)
    kids = {k.kid for k in server.view(later).refresh_verify_keys.keys}
    assert kids == {new.kid}


async def test_an_encrypted_key_file_yields_the_same_refresh_mac_key(tmp_path):
    keystore = store(tmp_path, passphrase="s3cret-pass")
    await keystore.ensure_signing_key(T0)

    again = store(tmp_path, passphrase="s3cret-pass").view(T0).refresh_key

    assert again.raw_value == keystore.view(T0).refresh_key.raw_value


async def test_rotate_now_signs_immediately(tmp_path):
    keystore = store(tmp_path)
    await keystore.ensure_signing_key(T0)

    new = await keystore.rotate(immediate=True, now=T0)

    assert keystore.view(T0).signing_key.kid == new.kid


async def test_prune_removes_only_keys_nothing_can_need(tmp_path):
    keystore = store(tmp_path)
    await keystore.ensure_signing_key(T0)
    old = (await keystore.records())[0].kid
    new = await keystore.rotate(immediate=True, now=T0)

    assert await keystore.prune(now=T0 + timedelta(days=1)) == []
    pruned = await keystore.prune(
        now=T0 + TIMING.refresh_max_lifetime + timedelta(seconds=1)
    )

    assert [r.kid for r in pruned] == [old]
    assert [r.kid for r in await keystore.records()] == [new.kid]
    assert not (tmp_path / f"{old}.pem").exists()


async def test_another_process_sees_a_rotation(tmp_path):
    server = store(tmp_path)
    await server.ensure_signing_key(T0)
    server.view(T0)
    admin = store(tmp_path)

    new = await admin.rotate(immediate=True, now=T0)

    assert server.view(T0).signing_key.kid == new.kid


async def test_passphrase_encrypts_key_files(tmp_path):
    keystore = store(tmp_path, passphrase="s3cret-pass")
    await keystore.ensure_signing_key(T0)
    [record] = await keystore.records()

    pem = (tmp_path / f"{record.kid}.pem").read_text()

    assert "ENCRYPTED" in pem
    assert (
        store(tmp_path, passphrase="s3cret-pass").view(T0).signing_key.kid == record.kid
    )
    with pytest.raises(KeyStoreError, match="AUTH_KEYS_PASSPHRASE"):
        store(tmp_path, passphrase="wrong").view(T0)
    with pytest.raises(KeyStoreError):
        store(tmp_path).view(T0)


async def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(KeyStoreError, match="no key manifest"):
        store(tmp_path / "absent").view(T0)


async def test_rotate_now_after_a_scheduled_rotation_supersedes_it(tmp_path):
    keystore = store(tmp_path)
    await keystore.ensure_signing_key(T0)
    first = (await keystore.records())[0].kid
    scheduled = await keystore.rotate(now=T0)

    immediate = await keystore.rotate(immediate=True, now=T0 + timedelta(seconds=1))

    later = T0 + timedelta(seconds=1) + TIMING.jwks_max_age * 2
    assert keystore.view(later).signing_key.kid == immediate.kid
    records = {r.kid: r for r in await keystore.records()}
    assert records[first].signing_until == immediate.signing_from
    assert records[scheduled.kid].signing_until == immediate.signing_from


# --- a writer checks the whole store first and changes nothing if it fails ------

LATER = T0 + TIMING.refresh_max_lifetime + timedelta(seconds=1)  # first key expired


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file of the store with its bytes (lock file and any stray ones)."""
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


async def two_keys(directory: Path, passphrase: str | None) -> str:
    """A store whose first key has expired by LATER; returns that key's kid."""
    keystore = store(directory, passphrase)
    await keystore.ensure_signing_key(T0)
    await keystore.rotate(immediate=True, now=T0)
    return (await keystore.records())[0].kid


def _unlink(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


# fault: (passphrase the store is made with, the writer's, damage, message)
UNREADABLE_STORES = {
    "wrong-passphrase": (
        "s3cret-right",
        "s3cret-wrong",
        None,
        "encrypted, and AUTH_KEYS_PASSPHRASE does not decrypt it",
    ),
    "passphrase-unset": (
        "s3cret-right",
        None,
        None,
        "encrypted, but AUTH_KEYS_PASSPHRASE is not set",
    ),
    "passphrase-on-plain-store": (
        None,
        "s3cret-new",
        None,
        "not encrypted, but AUTH_KEYS_PASSPHRASE is set",
    ),
    "key-file-missing": ("s3cret-right", "s3cret-right", _unlink, "file missing"),
    "key-file-truncated": (None, None, _truncate, "not a valid PEM private key"),
}
WRITERS = {
    "rotate": lambda keystore: keystore.rotate(now=LATER),
    "rotate-now": lambda keystore: keystore.rotate(immediate=True, now=LATER),
    "prune": lambda keystore: keystore.prune(now=LATER),
}


@pytest.mark.parametrize("write", list(WRITERS.values()), ids=list(WRITERS))
@pytest.mark.parametrize(
    ("made_with", "used_with", "damage", "message"),
    list(UNREADABLE_STORES.values()),
    ids=list(UNREADABLE_STORES),
)
async def test_a_writer_changes_nothing_in_a_store_it_cannot_read(
    tmp_path, made_with, used_with, damage, message, write
):
    kid = await two_keys(tmp_path, made_with)
    pem = tmp_path / f"{kid}.pem"
    if damage:
        damage(pem)
    before = snapshot(tmp_path)

    with pytest.raises(KeyStoreError) as caught:
        await write(store(tmp_path, used_with))

    assert snapshot(tmp_path) == before  # no new key file, same manifest
    error = str(caught.value)
    assert "(key store unchanged)" in error
    assert f"key {kid} ({pem})" in error and message in error
    assert "s3cret" not in error  # never a passphrase in a message


async def test_rotation_encrypts_the_new_key_like_the_others(tmp_path):
    encrypted, plain = tmp_path / "encrypted", tmp_path / "plain"
    await two_keys(encrypted, "s3cret-right")
    await two_keys(plain, None)

    new_encrypted = await store(encrypted, "s3cret-right").rotate(now=LATER)
    new_plain = await store(plain).rotate(now=LATER)

    assert b"ENCRYPTED" in (encrypted / f"{new_encrypted.kid}.pem").read_bytes()
    assert b"ENCRYPTED" not in (plain / f"{new_plain.kid}.pem").read_bytes()
    assert (
        store(encrypted, "s3cret-right")
        .view(LATER)
        .verify_keys.get_by_kid(new_encrypted.kid)
    )


async def test_a_failed_manifest_write_leaves_no_key_file_behind(tmp_path, monkeypatch):
    await two_keys(tmp_path, None)
    before = snapshot(tmp_path)

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("authserver.services.key_files.os.replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        await store(tmp_path).rotate(now=LATER)
    monkeypatch.undo()

    assert snapshot(tmp_path) == before  # neither the new PEM nor a temp manifest
    assert len(await store(tmp_path).records()) == 2


async def test_lifetimes_past_year_9999_refuse_to_rotate(tmp_path):
    await two_keys(tmp_path, None)
    before = snapshot(tmp_path)
    endless = KeyTiming(
        jwks_max_age=TIMING.jwks_max_age,
        token_ttl=TIMING.token_ttl,
        refresh_max_lifetime=timedelta(seconds=8_000_000_000_000),
    )
    keystore = KeyStore(tmp_path, timing=endless, check_interval=0)

    with pytest.raises(KeyStoreError, match="reach past the year 9999"):
        await keystore.rotate(now=LATER)

    assert snapshot(tmp_path) == before


# --- errors name the kid, the file and the problem ------------------------------


async def test_a_damaged_key_file_is_not_blamed_on_the_passphrase(tmp_path):
    keystore = store(tmp_path)
    await keystore.ensure_signing_key(T0)
    [record] = await keystore.records()
    pem = tmp_path / f"{record.kid}.pem"
    for damaged in (pem.read_bytes()[:300], b"", b"not a key at all\n"):
        pem.write_bytes(damaged)

        with pytest.raises(KeyStoreError) as caught:
            store(tmp_path).view(T0)

        error = str(caught.value)
        assert f"key {record.kid} ({pem}): not a valid PEM private key" in error
        assert "PASSPHRASE" not in error


async def test_a_missing_key_file_is_named(tmp_path):
    keystore = store(tmp_path)
    await keystore.ensure_signing_key(T0)
    [record] = await keystore.records()
    pem = tmp_path / f"{record.kid}.pem"
    pem.unlink()

    with pytest.raises(KeyStoreError) as caught:
        store(tmp_path).view(T0)

    assert str(caught.value) == (
        f"key {record.kid} ({pem}): file missing, though manifest.json lists the key"
    )


def _drop_alg(entry: dict) -> None:
    del entry["alg"]


def _naive_time(entry: dict) -> None:
    entry["signing_from"] = "2026-01-01T00:00:00"


def _bad_time(entry: dict) -> None:
    entry["created_at"] = "yesterday"


def _bad_kid(entry: dict) -> None:
    entry["kid"] = "../../etc/passwd"


# fault: (edit of the first manifest entry, what the error says about it)
MANIFEST_FAULTS = {
    "field-missing": (_drop_alg, "key {kid}: field 'alg' is missing"),
    "time-without-offset": (_naive_time, "key {kid}: field 'signing_from' has no UTC"),
    "time-not-a-time": (_bad_time, "key {kid}: field 'created_at' is not an ISO 8601"),
    "kid-not-a-file-name": (_bad_kid, "field 'kid' is not a key id"),
}


@pytest.mark.parametrize(
    ("edit", "message"), list(MANIFEST_FAULTS.values()), ids=list(MANIFEST_FAULTS)
)
async def test_a_corrupt_manifest_entry_names_the_key_and_field(
    tmp_path, edit, message
):
    keystore = store(tmp_path)
    await keystore.ensure_signing_key(T0)
    manifest = tmp_path / "manifest.json"
    data = json.loads(manifest.read_text())
    kid = data["keys"][0]["kid"]
    edit(data["keys"][0])
    manifest.write_text(json.dumps(data))

    with pytest.raises(KeyStoreError) as caught:
        store(tmp_path).view(T0)

    assert str(caught.value).startswith(f"corrupt key manifest {manifest}: ")
    assert message.format(kid=kid) in str(caught.value)


async def test_revoking_the_signing_key_replaces_it_at_once(tmp_path):
    server, admin = store(tmp_path), store(tmp_path)
    await admin.ensure_signing_key(T0)
    old = server.view(T0).signing_key.kid

    replacement = await admin.revoke(old, now=T0)

    assert replacement is not None
    view = server.view(T0)  # another process sees it on its next check
    assert view.signing_key.kid == replacement.kid
    assert published_kids(server, T0) == {replacement.kid}
    assert view.verify_keys.get_by_kid(replacement.kid)
    assert {k.kid for k in view.verify_keys.keys} == {replacement.kid}
    assert {k.kid for k in view.refresh_verify_keys.keys} == {replacement.kid}
    assert not (tmp_path / f"{old}.pem").exists()
    assert [r.kid for r in await admin.records()] == [replacement.kid]


async def test_revoking_a_retired_key_leaves_the_signer(tmp_path):
    keystore = store(tmp_path)
    await keystore.ensure_signing_key(T0)
    [first] = await keystore.records()
    second = await keystore.rotate(immediate=True, now=T0)
    assert first.kid in published_kids(keystore, T0)  # still verifying

    assert await keystore.revoke(first.kid, now=T0) is None

    assert keystore.view(T0).signing_key.kid == second.kid
    assert published_kids(keystore, T0) == {second.kid}


async def test_revoking_an_unknown_key_changes_nothing(tmp_path):
    keystore = store(tmp_path)
    await keystore.ensure_signing_key(T0)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    with pytest.raises(KeyStoreError, match="no key nope"):
        await keystore.revoke("nope", now=T0)

    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# --- files at rest -------------------------------------------------------------


async def test_the_manifest_is_never_written_through_a_planted_symlink(tmp_path):
    # Someone who can write in the store's directory plants a symlink where a
    # predictable temporary manifest would go, aimed at a file of their choosing.
    keys = tmp_path / "keys"
    keystore = store(keys)
    await keystore.ensure_signing_key(T0)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (keys / f".{MANIFEST}.{os.getpid()}.tmp").symlink_to(victim)

    new = await keystore.rotate(now=T0)

    assert victim.read_bytes() == b"precious"
    assert not (keys / MANIFEST).is_symlink()
    assert new.kid in {r.kid for r in await keystore.records()}


async def test_a_temporary_file_that_exists_is_not_reused(tmp_path, monkeypatch):
    keys = tmp_path / "keys"
    keystore = store(keys)
    await keystore.ensure_signing_key(T0)
    manifest = (keys / MANIFEST).read_bytes()
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    monkeypatch.setattr(
        "authserver.services.key_files.secrets.token_hex", lambda n: "x"
    )
    (keys / f".{MANIFEST}.x.tmp").symlink_to(victim)

    with pytest.raises(FileExistsError):
        await keystore.rotate(now=T0)

    assert victim.read_bytes() == b"precious"
    assert (keys / MANIFEST).read_bytes() == manifest  # nothing changed
    assert len(list(keys.glob("*.pem"))) == 1  # the new key's file is gone again


async def test_a_new_store_is_private(tmp_path):
    previous = os.umask(0o022)  # the usual umask: new files 0644, new dirs 0755
    try:
        keys = tmp_path / "keys"
        await store(keys).ensure_signing_key(T0)
    finally:
        os.umask(previous)

    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for path in keys.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
