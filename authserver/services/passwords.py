"""Password hashing off the event loop (bcrypt is slow on purpose)."""

import os
import secrets

import anyio.to_thread
from anyio import CapacityLimiter

from authserver.core.security import (
    hash_password,
    make_password_context,
    verify_password,
)


def usable_cores() -> int:
    """Cores this process may run on (a cgroup/affinity limit counts)."""
    return len(os.sched_getaffinity(0))


class PasswordHasher:
    """bcrypt in worker threads, at most `concurrency` at a time.

    A hash keeps one core busy. Without a bound, a login storm puts one
    thread per waiting login (anyio's pool: 40) on the cores beside the event
    loop, which then waits its turn behind all of them: every other request
    (JWKS, refresh) slows down, and logins finish no sooner. Waiting logins
    queue here instead.
    """

    def __init__(self, rounds: int, concurrency: int | None = None) -> None:
        self._context = make_password_context(rounds)
        self._dummy_hash: str | None = None
        self._limiter = CapacityLimiter(concurrency or usable_cores())

    @property
    def concurrency(self) -> int:
        return int(self._limiter.total_tokens)

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(
            hash_password, self._context, password, limiter=self._limiter
        )

    async def verify(
        self, password: str, password_hash: str
    ) -> tuple[bool, str | None]:
        """(matches, new hash if the stored one used an outdated scheme or cost)."""
        return await anyio.to_thread.run_sync(
            verify_password,
            self._context,
            password,
            password_hash,
            limiter=self._limiter,
        )

    async def burn(self, password: str) -> None:
        """Spend one verify's worth of work, so unknown users cost the same."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await self.verify(password, self._dummy_hash)
