"""Browser sign-in sessions (OIDC Core §3.1.2.3): the cookie holds a random
secret, the database its SHA-256; `auth_time` and `sid` come from the row.

A session ends when it expires, when the user signs out (RP-Initiated Logout),
when an admin revokes it, and when the user is disabled, deleted or given a
new password (services.users, in the same transaction as the refresh tokens).
Signing out and revoking end what the session signed in to as well: the token
families its code exchanges made (the apps' refresh and access tokens) are
revoked in the same transaction, as reuse detection revokes one. A session
that just expires leaves them to their own lifetime.
"""

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from authserver.core.security import new_opaque_token, opaque_token_hash
from authserver.crud.login_session import LoginSessionRepository
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.user import UserRepository
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import LoginSession, User
from authserver.services import audit

COOKIE_NAME = "authserver_session"
# Over https the __Host- prefix makes the browser refuse the cookie unless it
# is Secure, host-only and for Path=/ (RFC 6265bis §4.1.3.2): no sibling
# domain or plain-http page can plant or shadow it.
SECURE_COOKIE_NAME = "__Host-authserver_session"
MAX_USER_AGENT = 200


def cookie_name(issuer: str) -> str:
    return SECURE_COOKIE_NAME if cookie_secure(issuer) else COOKIE_NAME


def cookie_secure(issuer: str) -> bool:
    return urlsplit(issuer).scheme == "https"


async def start(
    repo: LoginSessionRepository,
    user: User,
    *,
    now: datetime,
    ttl: timedelta,
    ip: str | None,
    user_agent: str | None,
) -> tuple[LoginSession, str]:
    """A new session for `user` and the cookie value that names it (shown once)."""
    token = new_opaque_token()
    login = LoginSession(
        id=uuid.uuid4(),
        token_hash=opaque_token_hash(token),
        user_id=user.id,
        auth_time=now,
        expires_at=now + ttl,
        ip=ip,
        user_agent=_printable(user_agent)[:MAX_USER_AGENT] if user_agent else None,
    )
    await repo.add(login)
    await audit.record(
        repo.session, "session_started", subject=str(user.id), sid=str(login.id)
    )
    return login, token


async def current(
    repo: LoginSessionRepository, token: str | None, *, now: datetime
) -> tuple[LoginSession, User] | None:
    """The live session a cookie names and its (active) user, or None."""
    if not token or len(token) > 100:
        return None
    login = await repo.get_by_token_hash(opaque_token_hash(token))
    if login is None or login.ended_at is not None or login.expires_at <= now:
        return None
    user = await UserRepository(repo.session).get(login.user_id)
    # Disabling or re-passwording ends sessions; this is the belt to those braces.
    if user is None or not user.is_active or user.password_changed_at > login.auth_time:
        return None
    return login, user


async def end(
    repo: LoginSessionRepository, login: LoginSession, *, at: datetime, event: str
) -> bool:
    """End one session and revoke the token families it made (not committed);
    False if it had already ended."""
    ended = await repo.end(login.id, at=at)
    if ended:
        tokens = RefreshTokenRepository(repo.session)
        revoked = await tokens.revoke_for_session(login.id, at=at)
        await audit.record(
            repo.session,
            event,
            subject=str(login.user_id),
            sid=str(login.id),
            refresh_tokens_revoked=revoked,
        )
    return ended


async def list_live(
    repo: LoginSessionRepository, *, now: datetime, user_id: uuid.UUID | None = None
) -> Sequence[LoginSession]:
    return await repo.list(now=now, user_id=user_id)


async def sign_out(
    uow: UnitOfWork, login: LoginSession, *, at: datetime, event: str
) -> bool:
    """End one session, as `end` does, and commit; False if it had already ended."""
    ended = await end(LoginSessionRepository(uow.session), login, at=at, event=event)
    await uow.commit()
    return ended


async def sign_out_everywhere(
    uow: UnitOfWork, user_id: uuid.UUID, *, at: datetime
) -> int:
    """End every live session of a user (an admin's revocation), revoke every
    family a session of theirs made, expired ones' included, and commit;
    returns how many sessions ended."""
    ended = await LoginSessionRepository(uow.session).end_for_user(user_id, at=at)
    revoked = await RefreshTokenRepository(uow.session).revoke_browser_sign_ins(
        user_id, at=at
    )
    await audit.record(
        uow.session,
        "sessions_revoked",
        subject=str(user_id),
        revoked=ended,
        refresh_tokens_revoked=revoked,
    )
    await uow.commit()
    return ended


def logout_csrf(cookie_token: str) -> str:
    """The logout form's CSRF token: derived from the session cookie, which no
    other site can read, so only a page we served can carry it."""
    return hashlib.sha256(b"authserver logout\0" + cookie_token.encode()).hexdigest()


def logout_csrf_matches(cookie_token: str, form_token: str | None) -> bool:
    return form_token is not None and hmac.compare_digest(
        logout_csrf(cookie_token), form_token
    )


def _printable(text: str) -> str:
    # Stored strings are printed by authctl: no control characters.
    return "".join(ch if ch.isprintable() else "?" for ch in text)
