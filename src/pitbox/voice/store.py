"""SQL on voice_cache (look up and count a use, record new audio, evict least-recently-used rows) and on
voice_clips (each owner's key to cached audio)."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from pitbox.auth.access import Owner
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


#: The voice_clips column that names each kind of owner (never from input: keys of this mapping only).
_OWNER_COLUMNS = {"team": "team_id", "driver": "driver_id", "user": "user_id"}


#: For each kind of owner ($2), a clip of the audio $1 within its circle, its own first.
_CIRCLE = {
    "user": """SELECT key FROM voice_clips WHERE cache_key = $1 AND (
                 user_id = $2
                 OR user_id IN (SELECT b.user_id FROM team_members a JOIN team_members b ON b.team_id = a.team_id
                                WHERE a.user_id = $2)
                 OR team_id IN (SELECT team_id FROM team_members WHERE user_id = $2))
               ORDER BY user_id = $2 DESC NULLS LAST, created_at, key LIMIT 1""",
    "team": """SELECT key FROM voice_clips WHERE cache_key = $1 AND (
                 team_id = $2 OR user_id IN (SELECT user_id FROM team_members WHERE team_id = $2))
               ORDER BY team_id = $2 DESC NULLS LAST, created_at, key LIMIT 1""",
    "driver": "SELECT key FROM voice_clips WHERE cache_key = $1 AND driver_id = $2",
}


class VoiceClipStore:
    """The voice_clips table: each owner's own key to a piece of cached audio."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def clip_for(self, cache_key: str, owner: Owner) -> tuple[str, bool] | None:
        """A clip of this audio within the owner's circle and whether it was there before (else a new clip of
        the owner's); None when the audio left the cache meanwhile.

        The circle is what the owner may read (`Access.require_owner_reader`): a user's own clips, their
        team-mates' and their teams'; a team's own and its members'; a driver's own.
        """
        kind, owner_id = owner
        column = _OWNER_COLUMNS[kind]
        existing: str | None = await self._pool.fetchval(_CIRCLE[kind], cache_key, owner_id)
        if existing is not None:
            return existing, True
        try:
            made: str | None = await self._pool.fetchval(
                f"INSERT INTO voice_clips (key, cache_key, {column}) "
                "SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM voice_cache WHERE key = $2) "
                "ON CONFLICT DO NOTHING RETURNING key",
                secrets.token_hex(32),
                cache_key,
                owner_id,
            )
        except asyncpg.ForeignKeyViolationError:  # evicted between the check and the insert
            return None
        if made is not None:
            return made, False
        raced: str | None = await self._pool.fetchval(_CIRCLE[kind], cache_key, owner_id)
        return None if raced is None else (raced, False)

    async def clip(self, key: str) -> tuple[str, Owner] | None:
        """(cache key, owner) of a clip, or None."""
        row = await self._pool.fetchrow(
            "SELECT cache_key, team_id, driver_id, user_id FROM voice_clips WHERE key = $1", key
        )
        if row is None:
            return None
        for kind, column in _OWNER_COLUMNS.items():
            if row[column] is not None:
                return row["cache_key"], (kind, row[column])  # type: ignore[return-value]
        return None
