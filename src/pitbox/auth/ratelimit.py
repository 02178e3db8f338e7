"""In-process rate limiting: a sliding window of attempts per key, and an exponential back-off per key.

An attempt is counted when it is let through, before the work it guards: requests in flight together cannot
all pass a check that has not yet counted any of them. The caller takes a successful attempt back
(`forget`), so only failures stay counted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass


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


@dataclass
class _BackOffState:
    failures: int
    until: float  # no attempt before this (monotonic) time
    expires: float  # forgotten from this time on


class ExponentialBackOff:
    """Attempts on a key wait longer after each failure instead of being locked out: after `free` failures, the
    next attempt may come `first_s` later, then twice as long after each further failure, `max_s` at most.
    Failures are forgotten `forget_s` after the last wait ended; a success forgets them at once (`forget`).

    Counted, like the sliding window, when an attempt is let through, so attempts in flight together cannot all
    pass; an attempt during a wait is refused and not counted (it does not lengthen the wait).
    """

    def __init__(
        self,
        free: int,
        first_s: float,
        max_s: float,
        forget_s: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.first_s = first_s
        self.max_s = max_s
        self.forget_s = forget_s
        self._max_keys = max_keys
        self._clock = clock
        self._state: dict[str, _BackOffState] = {}

    def delay(self, failures: int) -> float:
        """Seconds the next attempt waits after `failures` counted failures."""
        if failures < self.free:
            return 0.0
        return float(min(self.first_s * 2 ** min(failures - self.free, 32), self.max_s))

    def attempt(self, keys: Sequence[str]) -> float:
        """Count an attempt against every key at once and answer 0, or, when any key is waiting, count nothing
        and answer the seconds left to wait."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            state = self._state.get(key)
            if state is not None and now >= state.expires:
                del self._state[key]
            elif state is not None and state.until > now:
                wait = max(wait, state.until - now)
        if wait > 0:
            return wait
        for key in keys:
            state = self._state.get(key)
            failures = (state.failures if state else 0) + 1
            delay = self.delay(failures)
            if state is None and len(self._state) >= self._max_keys:
                self._state.pop(next(iter(self._state)))
            self._state[key] = _BackOffState(failures, now + delay, now + delay + self.forget_s)
        return 0.0

    def forget(self, key: str) -> None:
        """Forget every failure on `key` (an attempt on it succeeded)."""
        self._state.pop(key, None)
