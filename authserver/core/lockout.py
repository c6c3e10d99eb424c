"""The brute-force lock on user passwords: how long a run of failures locks."""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockPolicy:
    """The threshold-th failure locks for `base`; each further one doubles it,
    up to `cap`."""

    threshold: int
    base: timedelta
    cap: timedelta

    def lengths(self) -> list[timedelta]:
        """The lock's length after threshold, threshold + 1, ... failures; the
        last one holds for every failure beyond."""
        lengths: list[timedelta] = []
        for exponent in range(21):  # 2^20 * base is past any sensible cap
            lengths.append(min(self.base * 2**exponent, self.cap))
            if lengths[-1] == self.cap:
                break
        return lengths

    def until(self, failures: int, now: datetime) -> datetime | None:
        """When a lock that `failures` failures start at `now` ends (None: no lock)."""
        if self.threshold <= 0 or failures < self.threshold:
            return None
        lengths = self.lengths()
        return now + lengths[min(failures - self.threshold, len(lengths) - 1)]
