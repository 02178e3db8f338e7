"""Login attempts counted across instances in Redis, when REDIS_URL is set: a sliding window per key (a source
address) and an exponential back-off per key (an account).

Each instance alone would allow the whole rate, so N instances behind a load balancer allowed N times the
guesses. With Redis every instance counts in the same place: a sorted set of attempt times per window key and
a hash (failures, no attempt before) per back-off key (keys hashed, so no email sits in Redis), checked and
added to in one script on Redis's own clock, so attempts in flight together on several instances cannot all
pass. A successful attempt is taken back from the windows and clears the back-offs, so only failures count.

Without Redis, or while it does not answer, each instance counts on its own (`SlidingWindowLimiter`): an
outage of Redis never locks anyone out, it only loosens the limit to one instance's. After a failure Redis is
left alone for a few seconds, so a Redis that hangs costs one timeout, not one per login.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

import structlog

from pitbox.auth.ratelimit import ExponentialBackOff, SlidingWindowLimiter

log = structlog.get_logger(__name__)

KEY_PREFIX = "pitbox:limit:"
#: Seconds Redis is left alone after it failed (its timeouts would otherwise slow every login down).
RETRY_REDIS_S = 5.0
#: Seconds between two warnings that Redis does not answer.
WARN_EVERY_S = 60.0

# KEYS: the windows (ARGV[4] of them), then the back-offs. ARGV: window seconds, limit, ticket, number of windows,
# then the back-off's free failures, first wait, longest wait and seconds to forget. Answers "0" when the attempt
# was counted on every key, else the seconds to wait (as text: Redis would truncate a Lua number to an integer).
_ATTEMPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local window, limit, windows = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local free, first, longest, forget = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local wait = 0
for i, key in ipairs(KEYS) do
  if i <= windows then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if redis.call('ZCARD', key) >= limit then
      local entry = redis.call('ZRANGE', key, -limit, -limit, 'WITHSCORES')
      wait = math.max(wait, window - (now - tonumber(entry[2])))
    end
  else
    local not_before = tonumber(redis.call('HGET', key, 'until') or '0')
    if not_before > now then wait = math.max(wait, not_before - now) end
  end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  if i <= windows then
    redis.call('ZADD', key, now, ARGV[3])
    redis.call('EXPIRE', key, math.ceil(window) + 1)
  else
    local failures = redis.call('HINCRBY', key, 'n', 1)
    local delay = 0
    if failures >= free then delay = math.min(first * 2 ^ math.min(failures - free, 32), longest) end
    redis.call('HSET', key, 'until', tostring(now + delay))
    redis.call('EXPIRE', key, math.ceil(delay + forget))
  end
end
return '0'
"""


class SharedLimiter:
    """At most `limit` failed attempts per `window_s` seconds for each window key, and an exponential back-off
    for each back-off key (after `limit` failures, `backoff_first_s`, doubling up to `backoff_max_s`), on every
    instance sharing `redis_url`."""

    def __init__(
        self,
        name: str,
        limit: int,
        window_s: float,
        redis_url: str | None = None,
        *,
        backoff_first_s: float | None = None,
        backoff_max_s: float = 900.0,
        backoff_forget_s: float = 3600.0,
    ) -> None:
        self._name = name
        self._limit = limit
        self._window = window_s
        self._local = SlidingWindowLimiter(limit, window_s)
        self._backoff = ExponentialBackOff(
            limit, window_s if backoff_first_s is None else backoff_first_s, backoff_max_s, backoff_forget_s
        )
        self._redis: Any = None
        self._attempt_script: Any = None
        if redis_url is not None:
            import redis.asyncio as aioredis  # only with REDIS_URL, as the hub's broker

            self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
            self._attempt_script = self._redis.register_script(_ATTEMPT)
        self._redis_back_at = 0.0  # monotonic time from which Redis is tried again after a failure
        self._warned_at = float("-inf")

    @property
    def shared(self) -> bool:
        """True when the count is kept in Redis."""
        return self._redis is not None

    async def attempt(self, keys: Sequence[str], *, backoff_keys: Sequence[str] = ()) -> tuple[float, str]:
        """Count an attempt against every window key and back-off key at once: (0, its ticket) when let through,
        or (seconds to wait, ticket) when some key is at its limit or waiting, with nothing counted."""
        ticket = uuid.uuid4().hex
        wait = self._local.attempt(keys, ticket)  # this instance's own window count, also the fallback
        if self._use_redis():
            backoff = self._backoff
            try:
                answer = await self._attempt_script(
                    keys=[self._key(key) for key in (*keys, *backoff_keys)],
                    args=[
                        self._window,
                        self._limit,
                        ticket,
                        len(keys),
                        backoff.free,
                        backoff.first_s,
                        backoff.max_s,
                        backoff.forget_s,
                    ],
                )
            except Exception as exc:
                self._redis_failed(exc)
            else:
                shared_wait = float(answer)
                if shared_wait > 0 and wait == 0:
                    for key in keys:  # refused: nothing stays counted here either
                        self._local.forget(key, ticket)
                return shared_wait, ticket
        if wait == 0 and backoff_keys:
            wait = self._backoff.attempt(backoff_keys)
            if wait > 0:
                for key in keys:
                    self._local.forget(key, ticket)
        return wait, ticket

    async def succeeded(self, keys: Sequence[str], ticket: str, *, forgive: Sequence[str] = ()) -> None:
        """The attempt `ticket` succeeded: it no longer counts on the window `keys`; the keys in `forgive`
        (windows or back-offs) lose every failure."""
        for key in keys:
            self._local.forget(key, None if key in forgive else ticket)
        for key in forgive:
            self._local.forget(key)
            self._backoff.forget(key)
        if not self._use_redis():
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in keys:
                    if key not in forgive:
                        pipe.zrem(self._key(key), ticket)
                for key in forgive:
                    pipe.delete(self._key(key))
                await pipe.execute()
        except Exception as exc:
            self._redis_failed(exc)

    async def close(self) -> None:
        """Close the Redis connection (app shutdown)."""
        if self._redis is not None:
            await self._redis.aclose()

    def _use_redis(self) -> bool:
        return self._redis is not None and time.monotonic() >= self._redis_back_at

    def _key(self, key: str) -> str:
        return f"{KEY_PREFIX}{self._name}:{hashlib.sha256(key.encode()).hexdigest()}"

    def _redis_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        self._redis_back_at = now + RETRY_REDIS_S
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning("rate_limit_redis_unavailable", limiter=self._name, error=str(exc)[:200])
