"""In-process rate limiting: a sliding window of attempts per key."""

from __future__ import annotations

import time
from collections import deque


class SlidingWindowLimiter:
    """At most `limit` events per `window_s` seconds for each key; held by one service instance."""

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._window = window_s
        self._max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again, 0 when it may now."""
        events = self._events.get(key)
        if not events:
            return 0.0
        now = time.monotonic()
        while events and now - events[0] >= self._window:
            events.popleft()
        if len(events) < self._limit:
            return 0.0
        return max(0.0, self._window - (now - events[0]))

    def hit(self, key: str) -> None:
        """Record one event for `key`."""
        if len(self._events) >= self._max_keys and key not in self._events:
            self._events.pop(next(iter(self._events)))
        self._events.setdefault(key, deque()).append(time.monotonic())

    def reset(self, key: str) -> None:
        """Forget `key` (after a successful login)."""
        self._events.pop(key, None)
