"""Both key stores, one behaviour: the file store and the database store (on
SQLite and PostgreSQL) run the same scenarios; then what only the database
store has: sealing, KEK ids, rewrap, one first key among concurrent starts."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from authserver.core.config import Settings
from authserver.db import migrate
from authserver.db.session import create_engine, create_session_factory
from authserver.models import SigningKey
from authserver.services.key_ring import SigningKeyStore
from authserver.services.keystore import (
    KeyStoreError,
    file_keystore,
    keystore_from_settings,
)
from tests.conftest import (
    create_pg_database,
    drop_pg_database,
    make_settings,
    require_postgres,
)
from tests.logs import capture_logs

PASSPHRASE = "correct horse battery staple"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
StoreMaker = Callable[..., SigningKeyStore]


@pytest.fixture(
    params=[
        "file",
        "database-sqlite",
        pytest.param("database-postgres", marks=pytest.mark.postgres),
    ]
)
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreMaker]:
    """Build stores (as separate processes would) on one fresh, empty store."""
    kind: str = request.param
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    if kind == "database-postgres":
        await require_postgres()
        url = await create_pg_database()
    engine = create_engine(make_settings(url, tmp_path / "keys"))
    await migrate.upgrade(engine)
    await engine.dispose()
    made: list[SigningKeyStore] = []

    def make(**overrides: object) -> SigningKeyStore:
        options: dict[str, object] = {"keys_passphrase": PASSPHRASE, **overrides}
        if kind != "file":
            options["keys_store"] = "database"
        store = keystore_from_settings(make_settings(url, tmp_path / "keys", **options))
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()
    if kind == "database-postgres":
        await drop_pg_database(url)


def published(store: SigningKeyStore, now: datetime) -> set[str]:
    return {k["kid"] for k in json.loads(store.view(now).jwks_json)["keys"]}


async def test_rotation_timeline_is_the_same_on_every_store(make_store):
    server, admin = make_store(), make_store()
    assert await server.ensure_signing_key(T0) is True
    assert await admin.ensure_signing_key(T0) is False
    await server.refresh()
    old = server.view(T0).signing_key.kid

    new = await admin.rotate(now=T0)
    await server.refresh()  # what the server's own check does

    assert published(server, T0) == {old, new.kid}
    assert server.view(T0).signing_key.kid == old
    switch = T0 + admin.timing.jwks_max_age
    assert server.view(switch).signing_key.kid == new.kid
    # The refresh MAC key follows the signing key, the old one still verifies.
    assert server.view(switch).refresh_key.kid == new.kid
    assert server.view(switch).refresh_verify_keys.get_by_kid(old)
    gone = switch + admin.timing.token_ttl + admin.timing.jwks_max_age
    assert published(server, gone) == {new.kid}


async def test_prune_and_revoke_are_the_same_on_every_store(make_store):
    store = make_store()
    await store.ensure_signing_key(T0)
    [first] = await store.records()
    second = await store.rotate(immediate=True, now=T0)
    expired_at = T0 + store.timing.refresh_max_lifetime + timedelta(seconds=1)

    assert await store.prune(now=T0 + timedelta(days=1)) == []
    assert [r.kid for r in await store.prune(now=expired_at)] == [first.kid]
    assert [r.kid for r in await store.records()] == [second.kid]

    replacement = await store.revoke(second.kid, now=expired_at)

    assert replacement is not None and replacement.kid != second.kid
    assert [r.kid for r in await store.records()] == [replacement.kid]
    with pytest.raises(KeyStoreError, match="no key nope in the key store"):
        await store.revoke("nope", now=expired_at)


async def test_a_wrong_passphrase_is_one_error_naming_the_key(make_store):
    await make_store().ensure_signing_key(T0)
    stranger = make_store(keys_passphrase="not the passphrase")

    with pytest.raises(KeyStoreError) as caught:
        await stranger.refresh()
    with pytest.raises(KeyStoreError) as writing:
        await stranger.rotate(now=T0)

    [record] = await make_store().records()
    for error in (str(caught.value), str(writing.value)):
        assert f"key {record.kid} " in error and "AUTH_KEYS_PASSPHRASE" in error
        assert PASSPHRASE not in error and "not the passphrase" not in error
    assert "(key store unchanged)" in str(writing.value)
    assert [r.kid for r in await make_store().records()] == [record.kid]


async def test_rewrap_moves_every_key_to_the_new_passphrase(make_store):
    old = make_store()
    await old.ensure_signing_key(T0)
    await old.rotate(immediate=True, now=T0)
    await old.refresh()
    signer = old.view(T0).signing_key
    kids = sorted(r.kid for r in await old.records())
    both = make_store(
        keys_passphrase="a brand new passphrase",
        keys_previous_passphrases=[PASSPHRASE],
    )

    changed = await both.rewrap()

    assert sorted(changed) == kids
    assert await both.rewrap() == []  # nothing left under the old one
    new_only = make_store(keys_passphrase="a brand new passphrase")
    await new_only.refresh()
    assert new_only.view(T0).signing_key.as_dict(private=True) == signer.as_dict(
        private=True
    )  # the same key, so every token stays valid
    with pytest.raises(KeyStoreError, match="AUTH_KEYS_PASSPHRASE"):
        await make_store().refresh()  # the old passphrase alone opens nothing


async def test_export_and_import_move_keys_between_stores(make_store, tmp_path):
    source = make_store()
    await source.ensure_signing_key(T0)
    await source.rotate(now=T0)
    keys = await source.stored_keys()
    settings = make_settings("sqlite+aiosqlite://", tmp_path / "unused")
    copy = file_keystore(settings, tmp_path / "copy", passphrases=[PASSPHRASE])

    await copy.import_keys(keys)
    again = await copy.stored_keys()

    assert [k.record for k in again] == [k.record for k in keys]  # states kept
    assert [k.key.as_dict(private=True) for k in again] == [
        k.key.as_dict(private=True) for k in keys
    ]
    with pytest.raises(KeyStoreError, match="already holds 2 key"):
        await source.import_keys(again)


# --- the database store only ------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_settings(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Settings]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    if request.param == "postgres":
        await require_postgres()
        url = await create_pg_database()
    settings = make_settings(
        url,
        tmp_path / "no-keys-here",
        keys_store="database",
        keys_passphrase=PASSPHRASE,
    )
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    await engine.dispose()
    yield settings
    if request.param == "postgres":
        await drop_pg_database(url)


async def rows(settings: Settings) -> list[SigningKey]:
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            return list((await session.scalars(select(SigningKey))).all())
    finally:
        await engine.dispose()


async def test_concurrent_first_starts_create_one_key(db_settings):
    stores = [keystore_from_settings(db_settings) for _ in range(6)]
    try:
        created = await asyncio.gather(*(s.ensure_signing_key() for s in stores))
    finally:
        for store in stores:
            await store.aclose()

    assert created.count(True) == 1
    assert len(await rows(db_settings)) == 1


async def test_a_row_is_sealed_and_bound_to_its_kid(db_settings):
    store = keystore_from_settings(db_settings)
    await store.ensure_signing_key(T0)
    await store.rotate(immediate=True, now=T0)
    await store.aclose()
    first, second = await rows(db_settings)
    assert len(first.nonce) == 12 and first.nonce != second.nonce
    assert first.kek_id == second.kek_id and PASSPHRASE not in first.kek_id
    assert "d" not in first.public_jwk and first.public_jwk["kid"] == first.kid

    # Swap the two ciphertexts: each no longer opens under its own kid.
    engine = create_engine(db_settings)
    async with engine.begin() as conn:
        for row, other in ((first, second), (second, first)):
            await conn.execute(
                update(SigningKey)
                .where(SigningKey.kid == row.kid)
                .values(private_key_sealed=other.private_key_sealed, nonce=other.nonce)
            )
    await engine.dispose()

    reader = keystore_from_settings(db_settings)
    with pytest.raises(KeyStoreError) as caught:
        await reader.refresh()
    await reader.aclose()
    # Both rows are now wrong; the first one read is named.
    error = str(caught.value)
    assert any(
        f"key {row.kid} (database key store)" in error for row in (first, second)
    )
    assert "the stored ciphertext, nonce or kid was altered" in error


async def test_a_writer_changes_nothing_when_a_key_does_not_open(db_settings):
    store = keystore_from_settings(db_settings)
    await store.ensure_signing_key(T0)
    await store.aclose()
    before = [
        (r.kid, r.signing_until, r.private_key_sealed) for r in await rows(db_settings)
    ]
    wrong = keystore_from_settings(
        make_settings(
            db_settings.database_url,
            db_settings.keys_dir,
            keys_store="database",
            keys_passphrase="someone else's",
        )
    )
    kid = before[0][0]

    for write in (wrong.rotate, wrong.prune, wrong.rewrap):
        with pytest.raises(KeyStoreError) as caught:
            await write()
        assert "(key store unchanged)" in str(caught.value)
        assert f"key {kid} (database key store)" in str(caught.value)
    await wrong.aclose()

    after = [
        (r.kid, r.signing_until, r.private_key_sealed) for r in await rows(db_settings)
    ]
    assert after == before


async def test_a_server_picks_up_a_rotation_by_polling(db_settings):
    server = keystore_from_settings(
        db_settings.model_copy(update={"keystore_check_interval": 0.05})
    )
    admin = keystore_from_settings(db_settings)
    await admin.ensure_signing_key()
    await server.refresh()
    watcher = asyncio.create_task(server.watch(0.05))
    try:
        new = await admin.rotate(immediate=True)
        async with asyncio.timeout(10):
            while server.view().signing_key.kid != new.kid:
                await asyncio.sleep(0.05)
    finally:
        watcher.cancel()
        await server.aclose()
        await admin.aclose()
    assert new.kid in published(server, datetime.now(UTC))


async def test_concurrent_rotations_take_turns(db_settings):
    first = keystore_from_settings(db_settings)
    await first.ensure_signing_key(T0)
    await first.aclose()
    stores = [keystore_from_settings(db_settings) for _ in range(4)]
    try:
        await asyncio.gather(*(s.rotate(now=T0) for s in stores))
        records = await stores[0].records()
    finally:
        for store in stores:
            await store.aclose()

    # Had two rotations read the same keys, both new keys would sign forever
    # from the same moment; taking turns, each retires the one before it.
    assert len(records) == 5
    open_ended = [r for r in records if r.signing_until is None]
    assert len(open_ended) == 1
    windows = sorted(
        (r.signing_from, r.signing_until)
        for r in records
        if r.signing_until is None or r.signing_until > r.signing_from
    )
    for (_, end), (start, _) in zip(windows, windows[1:]):
        assert end is not None and end <= start


async def test_a_server_keeps_its_keys_while_the_database_is_away(
    db_settings, monkeypatch
):
    server = keystore_from_settings(db_settings)
    await server.ensure_signing_key()
    await server.refresh()
    kid = server.view().signing_key.kid
    checks = 0

    def unreachable() -> None:
        nonlocal checks
        checks += 1
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(server, "_unit_of_work", unreachable)
    with capture_logs() as logs:
        watcher = asyncio.create_task(server.watch(0))
        async with asyncio.timeout(10):
            while checks < 5:
                await asyncio.sleep(0.01)
        watcher.cancel()
    await server.aclose()

    assert server.view().signing_key.kid == kid  # still signing, no I/O needed
    [warning] = logs.named("keystore_check_failed")  # once, not per check
    assert warning["error"] == "ConnectionRefusedError"
