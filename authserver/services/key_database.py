"""The database key store (AUTH_KEYS_STORE=database): PostgreSQL is the only
state servers on many hosts share.

Private keys are stored as PKCS#8 DER sealed with AES-256-GCM under a
key-encryption key derived from AUTH_KEYS_PASSPHRASE (core.key_wrap); older
passphrases (AUTH_KEYS_PREVIOUS_PASSPHRASES) still open keys until
`authctl key rewrap`. Writers take turns through the store's counter row
(crud.signing_key); servers poll that counter every
AUTH_KEYSTORE_CHECK_INTERVAL seconds on their own small connection pool and
reload only when it moved, so a request never waits on the database for keys.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from authserver.core.config import Settings
from authserver.core.key_wrap import KeyEncryptionKeys, Sealed, UnwrapError
from authserver.crud.signing_key import SigningKeyRepository
from authserver.db.session import SessionFactory, create_engine, create_session_factory
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import SigningKey
from authserver.services.key_files import KID_PATTERN, KeyRecord, KeyStoreError
from authserver.services.key_ring import (
    KeyTiming,
    KeyView,
    KeyWriter,
    SigningKeyStore,
    StoredKey,
    public_jwk,
)

logger = logging.getLogger(__name__)

# A check interval of 0 means "as often as is sensible", not a busy loop.
MIN_POLL_SECONDS = 0.05
# (kid, nonce) -> the opened key: a nonce is new with every sealing, so a
# re-sealed (rewrapped) row is opened again and an unchanged one never is.
Opened = dict[tuple[str, bytes], RSAKey]


class DatabaseKeyStore(SigningKeyStore):
    where = "database key store"

    def __init__(
        self,
        settings: Settings,
        *,
        timing: KeyTiming,
        passphrases: Sequence[str],
        engine: AsyncEngine | None = None,
    ) -> None:
        super().__init__(timing)
        if not passphrases:
            raise KeyStoreError("the database key store needs AUTH_KEYS_PASSPHRASE")
        self._settings = settings
        self._passphrases = list(passphrases)
        self._keks: KeyEncryptionKeys | None = None
        self._engine = engine
        self._own_engine = engine is None
        self._factory: SessionFactory | None = None
        self._version: tuple[int | None, int] | None = None
        self._opened: Opened = {}
        self._broken: str | None = None

    # --- reading -----------------------------------------------------------

    def view(self, now: datetime | None = None) -> KeyView:
        if self._broken is not None:
            raise KeyStoreError(self._broken)
        if self._version is None:
            raise KeyStoreError(f"{self.where}: keys not loaded yet")
        return self._current_view(now or datetime.now(UTC))

    async def refresh(self) -> None:
        keks = await self._get_keks()
        async with self._unit_of_work() as uow:
            repo = SigningKeyRepository(uow.session)
            version = await repo.version()
            if version == self._version and self._broken is None:
                return
            rows = await repo.list()
        try:
            records, opened = await anyio.to_thread.run_sync(
                self._open_rows, rows, keks
            )
        except KeyStoreError as exc:
            self._broken = str(exc)
            raise
        self._install(records, {kid: key for (kid, _), key in opened.items()})
        self._opened = opened
        self._version = version
        self._broken = None

    async def watch(self, interval: float) -> None:
        reported: str | None = None  # each problem logged once, not per check
        while True:
            await asyncio.sleep(max(interval, MIN_POLL_SECONDS))
            try:
                await self.refresh()
                if reported is not None:
                    logger.info("keystore_recovered")
                reported = None
            except KeyStoreError as exc:
                if str(exc) != reported:
                    logger.error("keystore_unusable", extra={"error": str(exc)})
                reported = str(exc)
            except Exception as exc:  # the database is away: keep the last keys
                problem = type(exc).__name__
                if problem != reported:
                    logger.warning("keystore_check_failed", extra={"error": problem})
                reported = problem

    async def aclose(self) -> None:
        if self._own_engine and self._engine is not None:
            await self._engine.dispose()
            self._engine = self._factory = None

    async def _get_keks(self) -> KeyEncryptionKeys:
        if self._keks is None:
            # scrypt: about 0.1 s of CPU per passphrase, once per process.
            self._keks = await anyio.to_thread.run_sync(
                KeyEncryptionKeys.from_passphrases, self._passphrases
            )
        return self._keks

    def _unit_of_work(self) -> UnitOfWork:
        if self._factory is None:
            if self._engine is None:
                # Its own single connection: polling neither queues behind
                # requests for the pool nor counts in their circuit breaker.
                one = self._settings.model_copy(update={"db_pool_size": 1})
                self._engine = create_engine(one)
            self._factory = create_session_factory(self._engine)
        return UnitOfWork(self._factory)

    def _open_rows(
        self, rows: Sequence[SigningKey], keks: KeyEncryptionKeys
    ) -> tuple[list[KeyRecord], Opened]:
        """Every row's record and opened key; a KeyStoreError names the kid."""
        records = []
        opened: Opened = {}
        for row in rows:
            records.append(_record(row))
            cached = self._opened.get((row.kid, row.nonce))
            opened[(row.kid, row.nonce)] = cached or _open(row, keks)
        return records, opened

    # --- writing -----------------------------------------------------------

    async def _is_empty(self) -> bool:
        async with self._unit_of_work() as uow:
            return (await SigningKeyRepository(uow.session).version())[1] == 0

    @asynccontextmanager
    async def _writing(
        self, action: str | None, *, empty_ok: bool = False
    ) -> AsyncIterator[KeyWriter]:
        keks = await self._get_keks()
        async with self._unit_of_work() as uow:
            session = uow.session
            repo = SigningKeyRepository(session)
            await repo.lock()  # until commit: one writer on every host
            rows = list(await repo.list())
            if action is None:
                writer = _DatabaseWriter(session, keks, rows, {})
            else:
                try:
                    _, opened = await anyio.to_thread.run_sync(
                        self._open_rows, rows, keks
                    )
                except KeyStoreError as exc:
                    raise KeyStoreError(
                        f"cannot {action} (key store unchanged): {exc}"
                    ) from None
                keys = {kid: key for (kid, _), key in opened.items()}
                writer = _DatabaseWriter(session, keks, rows, keys)
            yield writer
            await uow.commit()


class _DatabaseWriter(KeyWriter):
    def __init__(
        self,
        session: AsyncSession,
        keks: KeyEncryptionKeys,
        rows: list[SigningKey],
        keys: dict[str, RSAKey],
    ) -> None:
        self.session = session
        self.keks = keks
        self.rows = {row.kid: row for row in rows}
        self.records = [_record(row) for row in rows]
        self.keys = keys

    async def save(
        self,
        records: Sequence[KeyRecord],
        *,
        new: Sequence[StoredKey] = (),
        removed: Sequence[str] = (),
    ) -> None:
        await SigningKeyRepository(self.session).delete(list(removed))
        for record in records:
            row = self.rows.get(record.kid)
            if row is not None:
                row.signing_until = record.signing_until
                row.published_until = record.published_until
                row.retain_until = record.retain_until
        repo = SigningKeyRepository(self.session)
        for stored in new:
            await repo.add(_row(stored, self.keks))

    async def rewrap(self) -> list[str]:
        changed = []
        for kid, row in self.rows.items():
            if row.kek_id == self.keks.current.id:
                continue
            sealed = self.keks.seal(
                _private_der(self.keys[kid]), associated_data=kid.encode()
            )
            row.private_key_sealed = sealed.ciphertext
            row.nonce = sealed.nonce
            row.kek_id = sealed.kek_id
            changed.append(kid)
        await self.session.flush()
        return changed


def _record(row: SigningKey) -> KeyRecord:
    if not KID_PATTERN.fullmatch(row.kid):
        # It may name a file one day (export): no path separators, no "..".
        raise KeyStoreError(f"{_where(row)}: not a key id")
    return KeyRecord(
        kid=row.kid,
        alg=row.alg,
        created_at=row.created_at,
        signing_from=row.signing_from,
        signing_until=row.signing_until,
        published_until=row.published_until,
        retain_until=row.retain_until,
    )


def _open(row: SigningKey, keks: KeyEncryptionKeys) -> RSAKey:
    sealed = Sealed(row.kek_id, row.nonce, row.private_key_sealed)
    try:
        der = keks.open(sealed, associated_data=row.kid.encode())
    except UnwrapError as exc:
        raise KeyStoreError(f"{_where(row)}: {exc}") from None
    try:
        key = RSAKey.import_key(
            der, parameters={"kid": row.kid, "alg": row.alg, "use": "sig"}
        )
    except (JoseError, ValueError, TypeError):
        raise KeyStoreError(f"{_where(row)}: not an RSA private key") from None
    if not key.is_private or _public(key) != _public_of(row.public_jwk):
        raise KeyStoreError(f"{_where(row)}: public_jwk does not match the key")
    return key


def _row(stored: StoredKey, keks: KeyEncryptionKeys) -> SigningKey:
    record, key = stored.record, stored.key
    sealed = keks.seal(_private_der(key), associated_data=record.kid.encode())
    return SigningKey(
        kid=record.kid,
        alg=record.alg,
        public_jwk=public_jwk(key, record.alg),
        private_key_sealed=sealed.ciphertext,
        nonce=sealed.nonce,
        kek_id=sealed.kek_id,
        created_at=record.created_at,
        signing_from=record.signing_from,
        signing_until=record.signing_until,
        published_until=record.published_until,
        retain_until=record.retain_until,
    )


def _private_der(key: RSAKey) -> bytes:
    return key.as_der(private=True)


def _public(key: RSAKey) -> tuple[Any, Any]:
    data = key.as_dict(private=False)
    return data.get("n"), data.get("e")


def _public_of(jwk: Any) -> tuple[Any, Any]:
    return (jwk.get("n"), jwk.get("e")) if isinstance(jwk, dict) else (None, None)


def _where(row: SigningKey) -> str:
    return f"key {row.kid} (database key store)"
