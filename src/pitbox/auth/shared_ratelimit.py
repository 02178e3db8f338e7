"""Login attempts counted across instances: a sliding window per key in Redis, when REDIS_URL is set.

Each instance alone would allow the whole rate, so N instances behind a load balancer allowed N times the
guesses. With Redis every instance adds to and reads the same window (a sorted set of attempt times per key,
keys hashed so no email sits in Redis). Without Redis, or while it does not answer, each instance counts on
its own (`SlidingWindowLimiter`), as before: an outage of Redis never locks anyone out, it only loosens the
limit to one instance's.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import structlog

from pitbox.auth.ratelimit import SlidingWindowLimiter

log = structlog.get_logger(__name__)

KEY_PREFIX = "pitbox:limit:"
#: Seconds between two warnings that Redis does not answer (every attempt would log otherwise).
WARN_EVERY_S = 60.0


class SharedLimiter:
    """At most `limit` events per `window_s` seconds for each key, on every instance that shares `redis_url`."""

    def __init__(self, name: str, limit: int, window_s: float, redis_url: str | None = None) -> None:
        self._name = name
        self._limit = limit
        self._window = window_s
        self._local = SlidingWindowLimiter(limit, window_s)
        self._redis: Any = None
        if redis_url is not None:
            import redis.asyncio as aioredis  # only with REDIS_URL, as the hub's broker

            self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._warned_at = float("-inf")

    @property
    def shared(self) -> bool:
        """True when the count is kept in Redis."""
        return self._redis is not None

    async def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again, 0 when it may now."""
        if self._redis is not None:
            now = time.time()
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.zremrangebyscore(self._key(key), "-inf", now - self._window)
                    pipe.zcard(self._key(key))
                    pipe.zrange(self._key(key), 0, 0, withscores=True)
                    _, count, oldest = await pipe.execute()
            except Exception as exc:  # noqa: BLE001 - any Redis failure: count on this instance instead
                self._warn(exc)
            else:
                if count < self._limit or not oldest:
                    return 0.0
                return max(0.0, self._window - (now - float(oldest[0][1])))
        return self._local.retry_after(key)

    async def hit(self, key: str) -> None:
        """Record one event for `key`."""
        self._local.hit(key)
        if self._redis is None:
            return
        now = time.time()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(self._key(key), {f"{now:.6f}-{uuid.uuid4().hex[:8]}": now})
                pipe.expire(self._key(key), int(self._window) + 1)
                await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - counted on this instance already
            self._warn(exc)

    async def reset(self, key: str) -> None:
        """Forget `key` (after a successful login)."""
        self._local.reset(key)
        if self._redis is None:
            return
        try:
            await self._redis.delete(self._key(key))
        except Exception as exc:  # noqa: BLE001 - the window expires by itself
            self._warn(exc)

    async def close(self) -> None:
        """Close the Redis connection (app shutdown)."""
        if self._redis is not None:
            await self._redis.aclose()

    def _key(self, key: str) -> str:
        return f"{KEY_PREFIX}{self._name}:{hashlib.sha256(key.encode()).hexdigest()}"

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning("rate_limit_redis_unavailable", limiter=self._name, error=str(exc)[:200])
