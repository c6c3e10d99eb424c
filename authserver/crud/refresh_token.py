"""Refresh-token records: single-use rotation and family revocation in SQL."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import cast

from sqlalchemy import (
    Table,
    bindparam,
    delete,
    false,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from authserver.crud.common import rowcount
from authserver.crud.liveness import family_live, refresh_token_live
from authserver.crud.refresh_store import RefreshTokenStore, refresh_token_store
from authserver.crud.rotation_batch import RotationRow
from authserver.crud.token_family import TokenFamilyRepository
from authserver.models import RefreshToken, TokenFamily, User
from authserver.models.base import UTCDateTime

_TOKENS = cast(Table, RefreshToken.__table__)
_USERS = cast(Table, User.__table__)


@dataclass(frozen=True)
class RefreshTokenState:
    """A refresh-token record as one statement saw it, with its owner."""

    record: RefreshToken  # detached: not tracked by the session
    username: str
    is_admin: bool
    live: bool  # crud.liveness.refresh_token_live, admin not required
    family_live: bool  # crud.liveness.family_live


# A revoked token, or one whose retry window closed, can no longer be answered again.
_NO_RETRY = {"retry_until": None, "retry_scope": None, "retry_blob": None}

_AT = bindparam("at", type_=UTCDateTime)
_GET_STATE = (
    select(
        _TOKENS,
        _USERS.c.username.label("owner_username"),
        _USERS.c.is_admin.label("owner_is_admin"),
        refresh_token_live(_AT, false()).label("live"),
        family_live(_TOKENS.c.family_id, _AT).label("family_live"),
    )
    .join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
    .where(_TOKENS.c.jti == bindparam("jti"))
)


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @cached_property
    def store(self) -> RefreshTokenStore:
        """How this backend stores a rotation (crud.refresh_store)."""
        return refresh_token_store(self.session)

    async def get(self, jti: str) -> RefreshToken | None:
        return await self.session.get(RefreshToken, jti)

    async def add(self, record: RefreshToken) -> None:
        """Insert a new record with one statement (no unit-of-work bookkeeping:
        the row is written once and never changed through this object)."""
        values = {c.key: getattr(record, c.key) for c in RefreshToken.__table__.c}
        await self.session.execute(insert(RefreshToken).values(**values))

    async def get_state(self, jti: str, *, at: datetime) -> RefreshTokenState | None:
        """The record, its owner, and whether it may rotate at `at`."""
        params = {"jti": jti, "at": at}
        row = (await self.session.execute(_GET_STATE, params)).first()
        if row is None:
            return None
        values = row._mapping
        return RefreshTokenState(
            record=RefreshToken(**{c.key: values[c.key] for c in _TOKENS.c}),
            username=values["owner_username"],
            is_admin=values["owner_is_admin"],
            live=values["live"],
            family_live=values["family_live"],
        )

    async def rotate_into(self, row: RotationRow) -> bool:
        """Mark a live token used and store its child, atomically; False, with
        nothing written, unless it is the client's and live (crud.refresh_store)."""
        return await self.store.rotate_alone(row)

    async def add_family(self, family: TokenFamily) -> None:
        await TokenFamilyRepository(self.session).add(family)

    async def revoke_family(self, family_id: uuid.UUID, *, at: datetime) -> int:
        """Revoke a family for good: its row first (what every rotating and
        accepting statement checks, so a child a concurrent rotation writes is
        dead as well), then each live token in one statement (no lock-order
        races). Returns how many tokens were revoked."""
        await TokenFamilyRepository(self.session).revoke(family_id, at=at)
        return await self._revoke_tokens(RefreshToken.family_id == family_id, at=at)

    async def revoke_for_session(self, session_id: uuid.UUID, *, at: datetime) -> int:
        """Revoke the families a login session made, as `revoke_family` does
        one. Returns how many tokens were revoked."""
        families = TokenFamilyRepository(self.session)
        revoked = await families.revoke_for_session(session_id, at=at)
        return await self._revoke_families_tokens(revoked, at=at)

    async def revoke_browser_sign_ins(self, user_id: uuid.UUID, *, at: datetime) -> int:
        """Revoke every family a login session of the user made, as
        `revoke_family` does one. Returns how many tokens were revoked."""
        families = TokenFamilyRepository(self.session)
        revoked = await families.revoke_browser_sign_ins(user_id, at=at)
        return await self._revoke_families_tokens(revoked, at=at)

    async def revoke_for_user(self, user_id: uuid.UUID, *, at: datetime) -> int:
        """Revoke every family of the user, as `revoke_family` does one."""
        await TokenFamilyRepository(self.session).revoke_for_user(user_id, at=at)
        return await self._revoke_tokens(RefreshToken.user_id == user_id, at=at)

    async def _revoke_families_tokens(
        self, family_ids: list[uuid.UUID], *, at: datetime
    ) -> int:
        if not family_ids:
            return 0
        return await self._revoke_tokens(RefreshToken.family_id.in_(family_ids), at=at)

    async def _revoke_tokens(self, which: ColumnElement[bool], *, at: datetime) -> int:
        """Revoke the live tokens `which` selects, in one statement."""
        stmt = (
            update(RefreshToken)
            .where(which, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at, **_NO_RETRY)
            .execution_options(synchronize_session=False)
        )
        return rowcount(await self.session.execute(stmt))

    async def purge(self, *, now: datetime, keep_expired_for: timedelta) -> int:
        """Drop closed retry answers and long-expired records; return rows deleted."""
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.retry_until < now)
            .values(**_NO_RETRY)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(
            delete(RefreshToken)
            .where(RefreshToken.expires_at < now - keep_expired_for)
            .execution_options(synchronize_session=False)
        )
        families = TokenFamilyRepository(self.session)
        purged = await families.purge(now=now, keep_expired_for=keep_expired_for)
        return rowcount(result) + purged
