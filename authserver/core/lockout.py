"""The brute-force lock on user passwords: how long a run of failures locks."""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockPolicy:
    """After `threshold` failures, lock for base * 2^(extra failures), capped."""

    threshold: int
    base: timedelta
    cap: timedelta

    def until(self, failures: int, now: datetime) -> datetime | None:
        if self.threshold <= 0 or failures < self.threshold:
            return None
        exponent = min(failures - self.threshold, 20)  # 2^20 * base caps anyway
        lock: timedelta = min(self.base * (2**exponent), self.cap)
        return now + lock
