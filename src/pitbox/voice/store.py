"""SQL on voice_cache: look up and count a use, record new audio, evict least-recently-used rows."""

from __future__ import annotations

from typing import Any

import asyncpg

from pitbox.voice.models import CacheEntry


def _entry(row: Any) -> CacheEntry:
    return CacheEntry(**dict(row))


class VoiceCacheStore:
    """The voice_cache table, through the pool it is given."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def use(self, key: str, *, count_hit: bool = True) -> CacheEntry | None:
        """The entry for `key` with its last use set to now (and its hit counted), or None."""
        row = await self._pool.fetchrow(
            """
            UPDATE voice_cache SET hits = hits + $2::int, last_used_at = now()
             WHERE key = $1
            RETURNING key, provider, voice, model, text, content_type, path, bytes, duration_s, hits,
                      created_at, last_used_at
            """,
            key,
            1 if count_hit else 0,
        )
        return None if row is None else _entry(row)

    async def get(self, key: str) -> CacheEntry | None:
        """The entry for `key` as stored, or None."""
        row = await self._pool.fetchrow(
            """
            SELECT key, provider, voice, model, text, content_type, path, bytes, duration_s, hits,
                   created_at, last_used_at
              FROM voice_cache
             WHERE key = $1
            """,
            key,
        )
        return None if row is None else _entry(row)

    async def record(
        self,
        *,
        key: str,
        provider: str,
        voice: str,
        model: str,
        text: str,
        content_type: str,
        path: str,
        size: int,
        duration_s: float | None,
    ) -> None:
        """Insert the entry for freshly written audio; a row already there is refreshed instead."""
        await self._pool.execute(
            """
            INSERT INTO voice_cache (key, provider, voice, model, text, content_type, path, bytes, duration_s)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (key) DO UPDATE
               SET content_type = EXCLUDED.content_type, path = EXCLUDED.path, bytes = EXCLUDED.bytes,
                   duration_s = EXCLUDED.duration_s, last_used_at = now()
            """,
            key,
            provider,
            voice,
            model,
            text,
            content_type,
            path,
            size,
            duration_s,
        )

    async def forget(self, key: str) -> None:
        """Delete the entry for `key` (its file is gone or damaged)."""
        await self._pool.execute("DELETE FROM voice_cache WHERE key = $1", key)

    async def total_bytes(self) -> int:
        """Bytes of audio the cache holds, by its rows."""
        total = await self._pool.fetchval("SELECT coalesce(sum(bytes), 0) FROM voice_cache")
        return int(total)

    async def evict_over(self, max_bytes: int, keep_key: str | None = None) -> list[str]:
        """Delete the least-recently-used rows until the rest fit in `max_bytes`; return their paths.

        Rows are ranked newest use first and a row goes once the running total passes the cap, so one
        statement decides; `keep_key` (the audio just made) is never evicted.
        """
        rows = await self._pool.fetch(
            """
            WITH ranked AS (
                SELECT key,
                       sum(bytes) OVER (ORDER BY (key = $2) DESC, last_used_at DESC, key) AS running
                  FROM voice_cache
            )
            DELETE FROM voice_cache AS v
             USING ranked AS r
             WHERE v.key = r.key AND r.running > $1 AND v.key IS DISTINCT FROM $2
            RETURNING v.path
            """,
            max_bytes,
            keep_key,
        )
        return [str(row["path"]) for row in rows]
