"""The password hasher runs bcrypt off the event loop, a bounded number at a time."""

import asyncio
import threading
import time

import pytest

from authserver.core import security
from authserver.services import passwords
from authserver.services.passwords import PasswordHasher, usable_cores


class ConcurrencyProbe:
    """Wraps the real verify and records how many run at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __call__(self, *args: object) -> tuple[bool, str | None]:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.02)  # long enough for the others to pile up
            return security.verify_password(*args)  # type: ignore[arg-type]
        finally:
            with self._lock:
                self.running -= 1


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_no_more_hashes_at_once_than_allowed(concurrency, monkeypatch):
    hasher = PasswordHasher(rounds=4, concurrency=concurrency)
    stored = await hasher.hash("correct horse")
    probe = ConcurrencyProbe()
    monkeypatch.setattr(passwords, "verify_password", probe)

    results = await asyncio.gather(
        *(hasher.verify("correct horse", stored) for _ in range(8))
    )

    assert all(valid for valid, _ in results)
    assert probe.most == concurrency


def test_the_default_bound_is_the_usable_cores():
    assert PasswordHasher(rounds=4).concurrency == usable_cores()
