"""Group commit of refresh rotations (PostgreSQL): one statement for the
rotations that arrive together, each with its own outcome."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from authserver.core.metrics import REFRESH_ROTATION_BATCH_SIZE
from authserver.crud import rotation_batch
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.rotation_batch import RotationRow, rotation_batcher
from authserver.db import rotation_batcher as batcher_module
from authserver.db.session import SessionFactory
from authserver.models import Client, RefreshToken, TokenFamily, User
from tests.factories import make_client, make_user

# The batcher is PostgreSQL's (SQLite has one writer and no data-modifying
# CTEs: it rotates inside the request's write transaction).
pytestmark = pytest.mark.parametrize(
    "database_url",
    [pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)

# Issued after the test users set their passwords (a token issued before
# that may not rotate), so an hour ahead.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


# The families' ends and revocations, for _store to write their rows.
FAMILY_ENDS: dict[uuid.UUID, datetime] = {}
FAMILIES_REVOKED: set[uuid.UUID] = set()


def _record(
    user: User,
    client: Client,
    *,
    family_expires_at: datetime = NOW + timedelta(days=30),
    family_revoked: bool = False,
    **changes: object,
) -> RefreshToken:
    values: dict[str, object] = {
        "jti": str(uuid.uuid4()),
        "family_id": uuid.uuid4(),
        "user_id": user.id,
        "client_id": client.id,
        "scope": "openid",
        "auth_time": NOW,
        "issued_at": NOW,
        "expires_at": NOW + timedelta(days=1),
    }
    values.update(changes)
    record = RefreshToken(**values)
    FAMILY_ENDS[record.family_id] = family_expires_at
    if family_revoked:
        FAMILIES_REVOKED.add(record.family_id)
    return record


def _rotation(parent: RefreshToken, **changes: object) -> RotationRow:
    child = _record_like(parent)
    row = RotationRow.of(
        parent.jti,
        child,
        at=NOW + timedelta(seconds=1),
        admin_required=False,
        retry_scope="api:read",
        retry_until=NOW + timedelta(seconds=10),
    )
    return rotation_with(row, **changes)


def rotation_with(row: RotationRow, **changes: object) -> RotationRow:
    values = {name: getattr(row, name) for name in row.__dataclass_fields__}
    values.update(changes)
    return RotationRow(**values)  # type: ignore[arg-type]


def _record_like(parent: RefreshToken) -> RefreshToken:
    return RefreshToken(
        jti=str(uuid.uuid4()),
        family_id=parent.family_id,
        user_id=parent.user_id,
        client_id=parent.client_id,
        scope=parent.scope,
        auth_time=parent.auth_time,
        issued_at=NOW + timedelta(seconds=1),
        expires_at=NOW + timedelta(days=1),
    )


async def _store(factory: SessionFactory, *records: RefreshToken) -> None:
    async with factory() as session:
        repository = RefreshTokenRepository(session)
        firsts = {record.family_id: record for record in reversed(records)}
        for record in firsts.values():
            await repository.add_family(_family(record))
        for record in records:
            await repository.add(record)
        await session.commit()


def _family(record: RefreshToken) -> TokenFamily:
    family_id = record.family_id
    return TokenFamily(
        id=family_id,
        user_id=record.user_id,
        client_id=record.client_id,
        created_at=NOW - timedelta(days=1),
        expires_at=FAMILY_ENDS.get(family_id, NOW + timedelta(days=30)),
        revoked_at=NOW if family_id in FAMILIES_REVOKED else None,
    )


async def _get(factory: SessionFactory, jti: str) -> RefreshToken | None:
    async with factory() as session:
        return await session.get(RefreshToken, jti)


@pytest.fixture
async def owner(session_factory: SessionFactory, clean_db: None) -> tuple[User, Client]:
    user = await make_user(session_factory)
    client = (await make_client(session_factory)).client
    return user, client


@pytest.fixture
def engine(session_factory: SessionFactory) -> AsyncEngine:
    bind = session_factory.kw["bind"]
    assert isinstance(bind, AsyncEngine)
    return bind


class StatementCounter:
    """Counts the rotation statements the engine runs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self.engine = engine.sync_engine

    def __enter__(self) -> "StatementCounter":
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement: str, *_args: object) -> None:
        if "unnest(" in statement:
            self.count += 1


async def test_rotations_that_arrive_together_share_one_statement(
    session_factory, owner, engine
):
    user, client = owner
    parents = [_record(user, client) for _ in range(20)]
    await _store(session_factory, *parents)
    rows = [_rotation(parent) for parent in parents]
    batcher = rotation_batcher(engine, max_in_flight=1)
    sizes_before = REFRESH_ROTATION_BATCH_SIZE.collect()[0].samples

    with StatementCounter(engine) as statements:
        outcomes = await asyncio.gather(*(batcher.rotate(row) for row in rows))

    assert outcomes == [True] * 20
    assert statements.count == 1
    for parent, row in zip(parents, rows, strict=True):
        stored_parent = await _get(session_factory, parent.jti)
        assert stored_parent is not None
        assert stored_parent.rotated_at == row.at
        assert stored_parent.replaced_by == row.child_jti
        assert stored_parent.retry_scope == "api:read"
        child = await _get(session_factory, row.child_jti)
        assert child is not None
        assert (child.family_id, child.user_id, child.client_id) == (
            parent.family_id,
            parent.user_id,
            parent.client_id,
        )
        assert child.issued_at == row.at and child.rotated_at is None
    sizes_after = REFRESH_ROTATION_BATCH_SIZE.collect()[0].samples
    assert _sample(sizes_after, "_sum") - _sample(sizes_before, "_sum") == 20


def _sample(samples: list, suffix: str) -> float:
    return next(s.value for s in samples if s.name.endswith(suffix))


async def test_two_rotations_of_one_parent_in_one_batch_one_wins(
    session_factory, owner, engine
):
    user, client = owner
    parent = _record(user, client)
    await _store(session_factory, parent)
    first, second = _rotation(parent), _rotation(parent)
    batcher = rotation_batcher(engine, max_in_flight=1)

    with StatementCounter(engine) as statements:
        outcomes = await asyncio.gather(batcher.rotate(first), batcher.rotate(second))

    assert statements.count == 1
    assert sorted(outcomes) == [False, True]
    winner, loser = (first, second) if outcomes[0] else (second, first)
    stored = await _get(session_factory, parent.jti)
    assert stored is not None and stored.replaced_by == winner.child_jti
    assert await _get(session_factory, winner.child_jti) is not None
    assert await _get(session_factory, loser.child_jti) is None


async def test_a_parent_that_may_not_rotate_holds_back_no_batch_mate(
    session_factory, owner, engine
):
    user, client = owner
    other_client = (await make_client(session_factory)).client
    disabled = await make_user(session_factory, is_active=False)
    admin = await make_user(session_factory, is_admin=True)
    live = _record(user, client)
    used = _record(user, client, rotated_at=NOW, replaced_by=str(uuid.uuid4()))
    revoked = _record(user, client, revoked_at=NOW)
    family_over = _record(user, client, family_expires_at=NOW)
    of_disabled = _record(disabled, client)
    family_revoked = _record(user, client, family_revoked=True)
    admin_token = _record(admin, client, scope="openid admin")
    not_admin = _record(user, client, scope="openid admin")
    await _store(
        session_factory,
        live,
        used,
        revoked,
        family_over,
        of_disabled,
        family_revoked,
        admin_token,
        not_admin,
    )
    rows = {
        "live": _rotation(live),
        "used": _rotation(used),
        "revoked": _rotation(revoked),
        "family over": _rotation(family_over),
        "user disabled": _rotation(of_disabled),
        "family revoked": _rotation(family_revoked),
        "another client's": _rotation(live, client_pk=other_client.id),
        "admin, still an admin": _rotation(admin_token, admin_required=True),
        "admin, no longer one": _rotation(not_admin, admin_required=True),
        "unknown": rotation_with(_rotation(live), parent_jti=str(uuid.uuid4())),
    }
    batcher = rotation_batcher(engine, max_in_flight=1)

    with StatementCounter(engine) as statements:
        outcomes = await asyncio.gather(*(batcher.rotate(r) for r in rows.values()))

    assert statements.count == 1
    won = {name for name, outcome in zip(rows, outcomes, strict=True) if outcome}
    assert won == {"live", "admin, still an admin"}
    for name, row in rows.items():
        child = await _get(session_factory, row.child_jti)
        assert (child is not None) == (name in won), name


async def test_a_failed_batch_leaves_each_rotation_to_its_own_request(
    session_factory, owner, engine, monkeypatch, caplog
):
    user, client = owner
    parents = [_record(user, client) for _ in range(3)]
    await _store(session_factory, *parents)

    async def broken(*_args: object) -> set[str]:
        raise RuntimeError("injected: the batch statement failed")

    monkeypatch.setattr(rotation_batch, "rotate_many", broken)
    batcher = rotation_batcher(engine, max_in_flight=1)
    caplog.set_level(logging.WARNING, logger=batcher_module.__name__)

    outcomes = await asyncio.gather(*(batcher.rotate(_rotation(p)) for p in parents))

    assert outcomes == [None, None, None]  # "run it alone"
    assert [r.message for r in caplog.records] == ["refresh_rotation_batch_failed"]
    assert caplog.records[0].rotations == 3

    # Through the repository, each rotation then runs alone and succeeds.
    async def rotate(parent: RefreshToken) -> tuple[bool, str]:
        child = _record_like(parent)
        async with session_factory() as session:
            repository = RefreshTokenRepository(session)
            row = RotationRow.of(
                parent.jti,
                child,
                at=NOW + timedelta(seconds=1),
                admin_required=False,
                retry_scope=None,
                retry_until=None,
            )
            assert await batcher.rotate(row) is None  # its batch fails
            won = await repository.rotate_into(row)
            await session.commit()
        return won, child.jti

    results = await asyncio.gather(*(rotate(parent) for parent in parents))
    assert [won for won, _ in results] == [True, True, True]
    for parent, (_, child_jti) in zip(parents, results, strict=True):
        stored = await _get(session_factory, parent.jti)
        assert stored is not None and stored.replaced_by == child_jti
        assert await _get(session_factory, child_jti) is not None


async def test_a_cancelled_request_does_not_disturb_its_batch(
    session_factory, owner, engine
):
    user, client = owner
    parents = [_record(user, client) for _ in range(3)]
    await _store(session_factory, *parents)
    rows = [_rotation(parent) for parent in parents]
    batcher = rotation_batcher(engine, max_in_flight=1)

    tasks = [asyncio.create_task(batcher.rotate(row)) for row in rows]
    await asyncio.sleep(0)  # all three queued, the flusher not yet run
    tasks[1].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    await batcher.aclose()

    assert outcomes[0] is True and outcomes[2] is True
    assert isinstance(outcomes[1], asyncio.CancelledError)
    # Its rotation was already in the statement: it happened, like a response
    # lost on the way (the retry window answers the client's retry).
    assert await _get(session_factory, rows[1].child_jti) is not None


async def test_rotations_queued_behind_a_statement_go_in_the_next(
    session_factory, owner, engine
):
    user, client = owner
    parents = [_record(user, client) for _ in range(6)]
    await _store(session_factory, *parents)
    batcher = rotation_batcher(engine, max_batch=4, max_in_flight=1)

    with StatementCounter(engine) as statements:
        outcomes = await asyncio.gather(
            *(batcher.rotate(_rotation(parent)) for parent in parents)
        )

    assert outcomes == [True] * 6
    assert statements.count == 2  # four, then the two that did not fit


async def test_a_later_rotation_is_not_stranded_when_the_flusher_finishes(
    session_factory, owner, engine
):
    # One rotation after another, each queued just as the previous statement's
    # flusher is finishing: each must still be written.
    user, client = owner
    parents = [_record(user, client) for _ in range(5)]
    await _store(session_factory, *parents)
    batcher = rotation_batcher(engine, max_in_flight=1)

    for parent in parents:
        # Awaited in this task (wait_for would add one, and with it the loop
        # turn that hides the race).
        async with asyncio.timeout(10):
            assert await batcher.rotate(_rotation(parent)) is True


async def test_a_revoked_family_cannot_rotate_in_a_batch(
    session_factory, owner, engine
):
    user, client = owner
    parent = _record(user, client)
    await _store(session_factory, parent)
    async with session_factory() as session:
        await RefreshTokenRepository(session).revoke_family(parent.family_id, at=NOW)
        await session.commit()
    batcher = rotation_batcher(engine)

    assert await batcher.rotate(_rotation(parent)) is False


async def test_a_rotation_waits_for_a_concurrent_writer_of_its_parent(
    session_factory, owner, engine
):
    # PostgreSQL re-checks the UPDATE's conditions once a concurrent writer of
    # the row commits: a parent revoked meanwhile does not rotate.
    user, client = owner
    parent = _record(user, client)
    await _store(session_factory, parent)
    batcher = rotation_batcher(engine)
    async with session_factory() as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.jti == parent.jti)
            .values(revoked_at=NOW)
        )  # holds the row lock until commit
        rotating = asyncio.create_task(batcher.rotate(_rotation(parent)))
        await asyncio.sleep(0.3)
        assert not rotating.done()  # waiting on the lock
        await session.commit()

    assert await asyncio.wait_for(rotating, 10) is False


@pytest.fixture
async def by_index(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose statements look parents up by index in the order the
    rows give them, as PostgreSQL plans it for a table of real size (a test's
    few rows would be read by a scan in the table's order instead)."""
    planner = {"enable_seqscan": "off", "enable_hashjoin": "off"}
    engine = create_async_engine(
        database_url, connect_args={"server_settings": planner}
    )
    yield engine
    await engine.dispose()


async def test_batches_holding_the_same_parents_do_not_deadlock(
    session_factory, owner, by_index, caplog
):
    # Replays racing in two workers: two batches get the same parents in
    # opposite orders. A third transaction holds the middle parent, so each
    # batch stops halfway with the parents before it locked; were the parents
    # locked in the order given, each batch would then wait for the other and
    # PostgreSQL would abort one as a deadlock. Each parent must rotate exactly
    # once, and no statement fail.
    user, client = owner
    parents = [_record(user, client) for _ in range(8)]
    await _store(session_factory, *parents)
    rows_first = [_rotation(parent) for parent in parents]
    rows_second = [_rotation(parent) for parent in reversed(parents)]
    first, second = rotation_batcher(by_index), rotation_batcher(by_index)
    caplog.set_level(logging.WARNING, logger=batcher_module.__name__)

    async with session_factory() as holder:
        middle = select(RefreshToken).where(RefreshToken.jti == parents[4].jti)
        await holder.execute(middle.with_for_update())
        racing = asyncio.gather(
            *(first.rotate(row) for row in rows_first),
            *(second.rotate(row) for row in rows_second),
        )
        await asyncio.sleep(0.5)  # both statements are waiting for the holder
        await holder.commit()
    async with asyncio.timeout(10):
        outcomes = await racing

    assert not [r.message for r in caplog.records if r.levelno >= logging.WARNING]
    assert outcomes.count(True) == len(parents)
    rows = rows_first + rows_second
    won = {row.child_jti for row, ok in zip(rows, outcomes, strict=True) if ok}
    for parent in parents:
        stored = await _get(session_factory, parent.jti)
        assert stored is not None and stored.replaced_by in won
