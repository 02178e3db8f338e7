"""In-process rate limiting: a sliding window of attempts per key.

An attempt is counted when it is let through, before the work it guards: requests in flight together cannot
all pass a check that has not yet counted any of them. The caller takes a successful attempt back
(`forget`), so only failures stay counted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence


class SlidingWindowLimiter:
    """At most `limit` attempts per `window_s` seconds for each key; held by one service instance."""

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._window = window_s
        self._max_keys = max_keys
        self._events: dict[
            str, deque[tuple[float, str]]
        ] = {}  # key -> (monotonic time, ticket), oldest first

    def attempt(self, keys: Sequence[str], ticket: str) -> float:
        """Count an attempt (named `ticket`) against every key at once and answer 0, or, when any key is at its
        limit, count nothing and answer the seconds until it may try again."""
        now = time.monotonic()
        wait = 0.0
        for key in keys:
            events = self._events.get(key)
            if not events:
                continue
            while events and now - events[0][0] >= self._window:
                events.popleft()
            if len(events) >= self._limit:
                # The attempt `limit` places from the newest is the one whose expiry lets the next one in.
                wait = max(wait, self._window - (now - events[len(events) - self._limit][0]))
        if wait > 0:
            return wait
        for key in keys:
            if len(self._events) >= self._max_keys and key not in self._events:
                self._events.pop(next(iter(self._events)))
            self._events.setdefault(key, deque()).append((now, ticket))
        return 0.0

    def forget(self, key: str, ticket: str | None = None) -> None:
        """Take back the attempt `ticket` on `key` (it succeeded), or every attempt on `key` without one."""
        if ticket is None:
            self._events.pop(key, None)
            return
        events = self._events.get(key)
        if events:
            self._events[key] = deque(event for event in events if event[1] != ticket)
