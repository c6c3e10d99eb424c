"""Password hashing off the event loop (bcrypt is slow on purpose)."""

import secrets

import anyio.to_thread

from authserver.core.security import (
    hash_password,
    make_password_context,
    verify_password,
)


class PasswordHasher:
    def __init__(self, rounds: int) -> None:
        self._context = make_password_context(rounds)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(hash_password, self._context, password)

    async def verify(
        self, password: str, password_hash: str
    ) -> tuple[bool, str | None]:
        """(matches, new hash if the stored one used an outdated scheme or cost)."""
        return await anyio.to_thread.run_sync(
            verify_password, self._context, password, password_hash
        )

    async def burn(self, password: str) -> None:
        """Spend one verify's worth of work, so unknown users cost the same."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await self.verify(password, self._dummy_hash)
