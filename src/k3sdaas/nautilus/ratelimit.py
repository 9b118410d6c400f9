"""Per-identity request limits: at most ``limit`` requests in any ``window`` seconds (a sliding log).

A sliding log is exact ("the 101st request within a minute is refused") and costs at most ``limit``
timestamps per active identity; identities idle for a whole window are forgotten when the table grows.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

MAX_IDENTITIES = 100_000


class RateLimiter:
    def __init__(self, limit: int = 100, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("rate limit and window must be positive")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, identity: str) -> int:
        """Count one request; 0 when it may go on, else the whole seconds to wait (``Retry-After``)."""
        now = self._clock()
        hits = self._hits.get(identity)
        if hits is None:
            if len(self._hits) >= MAX_IDENTITIES:
                self._forget_idle(now)
            hits = self._hits[identity] = deque(maxlen=self.limit)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        return 0

    def remaining(self, identity: str) -> int:
        """Requests the identity has left in its window, as of its last ``hit`` (O(1): no clock read)."""
        return self.limit - len(self._hits.get(identity, ()))

    def _forget_idle(self, now: float) -> None:
        self._hits = {who: hits for who, hits in self._hits.items() if hits and hits[-1] > now - self.window}
