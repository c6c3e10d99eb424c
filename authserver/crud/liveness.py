"""When a token may still be used: each rule written once, in SQL, and used by
every statement that decides it (rotation on both backends, the look-ups of
introspection, revocation and the bearer check), so the answer is always the
database's as of that statement."""

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import Table, and_, exists, or_
from sqlalchemy.sql.elements import ColumnElement

from authserver.models import RefreshToken, TokenFamily, User

_TOKENS = cast(Table, RefreshToken.__table__)
_USERS = cast(Table, User.__table__)
_FAMILIES = cast(Table, TokenFamily.__table__)


def user_live() -> ColumnElement[bool]:
    """A condition on `users`: the user may still use their tokens."""
    return _USERS.c.is_active.is_(True)


def family_live(
    family_id: ColumnElement[uuid.UUID],
    at: ColumnElement[datetime],
    *,
    user_id: ColumnElement[uuid.UUID] | None = None,
) -> ColumnElement[bool]:
    """The family exists (of `user_id`, when given), is unrevoked and within
    its absolute lifetime. A revocation marks this row first, so a statement
    that starts after it committed sees it, whatever it missed itself."""
    conditions = [
        _FAMILIES.c.id == family_id,
        _FAMILIES.c.revoked_at.is_(None),
        _FAMILIES.c.expires_at > at,
    ]
    if user_id is not None:
        conditions.append(_FAMILIES.c.user_id == user_id)
    return exists().where(*conditions).correlate_except(_FAMILIES)


def refresh_token_live(
    at: ColumnElement[datetime], admin_required: ColumnElement[bool]
) -> ColumnElement[bool]:
    """A condition on `refresh_tokens`: the token may rotate at `at`. Unused,
    unrevoked, unexpired, its family live, its owner live (and an admin when
    `admin_required`: the child would carry the admin scope)."""
    owner_live = (
        exists()
        .where(
            _USERS.c.id == _TOKENS.c.user_id,
            user_live(),
            or_(_USERS.c.is_admin.is_(True), admin_required.is_(False)),
        )
        .correlate_except(_USERS)
    )
    return and_(
        _TOKENS.c.rotated_at.is_(None),
        _TOKENS.c.revoked_at.is_(None),
        _TOKENS.c.expires_at > at,
        family_live(_TOKENS.c.family_id, at),
        owner_live,
    )
