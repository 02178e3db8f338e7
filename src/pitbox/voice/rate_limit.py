"""Per-caller token buckets: a burst allowance that refills at a steady rate."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from pitbox.errors import RateLimited


class TokenBuckets:
    """One bucket per caller key, holding at most `burst` tokens and refilling `per_minute` tokens a minute.

    Only the `max_callers` most recently seen callers are remembered; a forgotten one starts full again,
    which errs on the side of the caller and keeps memory bounded.
    """

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        max_callers: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self._rate_per_s = per_minute / 60.0
        self._burst = float(burst)
        self._max_callers = max_callers
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, caller: str) -> None:
        """Spend one token of `caller`'s bucket, or raise RateLimited saying when the next one comes."""
        now = self._clock()
        tokens, stamp = self._buckets.pop(caller, (self._burst, now))
        tokens = min(self._burst, tokens + (now - stamp) * self._rate_per_s)
        if tokens < 1.0:
            self._buckets[caller] = (tokens, now)
            retry_after = (1.0 - tokens) / self._rate_per_s
            raise RateLimited(
                "too many voice requests; slow down",
                retry_after=math.ceil(retry_after * 10) / 10,
                details={"retry_after_s": round(retry_after, 1)},
            )
        self._buckets[caller] = (tokens - 1.0, now)
        while len(self._buckets) > self._max_callers:
            self._buckets.popitem(last=False)
