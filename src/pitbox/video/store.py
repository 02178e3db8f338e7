"""SQL for video frames: insert once per (session, sha256), read one, list a session's frames (keyset-paged),
find the nearest to a time, and delete the old ones."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from pitbox.db.types import Queryable
from pitbox.video.models import FrameCursor

COLUMNS = "id, session_id, driver_id, ts, content_type, bytes, width, height, sha256, path, created_at"


async def insert_frame(
    pool: Queryable,
    session_id: uuid.UUID,
    driver_id: uuid.UUID,
    ts: datetime,
    content_type: str,
    size: int,
    width: int,
    height: int,
    sha256: str,
    path: str,
) -> asyncpg.Record | None:
    """Insert a frame and return its row; None when the session already holds a frame with this sha256."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""INSERT INTO video_frames (session_id, driver_id, ts, content_type, bytes, width, height, sha256, path)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (session_id, sha256) DO NOTHING
            RETURNING {COLUMNS}""",
        session_id,
        driver_id,
        ts,
        content_type,
        size,
        width,
        height,
        sha256,
        path,
    )
    return row


async def frame_by_sha(pool: Queryable, session_id: uuid.UUID, sha256: str) -> asyncpg.Record | None:
    """The session's frame with this content hash."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"SELECT {COLUMNS} FROM video_frames WHERE session_id = $1 AND sha256 = $2",
        session_id,
        sha256,
    )
    return row


async def frame_by_id(pool: Queryable, frame_id: uuid.UUID) -> asyncpg.Record | None:
    """One frame."""
    sql = f"SELECT {COLUMNS} FROM video_frames WHERE id = $1"
    row: asyncpg.Record | None = await pool.fetchrow(sql, frame_id)
    return row


async def frames_of_session(
    pool: Queryable,
    session_id: uuid.UUID,
    ts_from: datetime | None,
    ts_to: datetime | None,
    after: FrameCursor | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to `limit` frames of a session in time order, within [from, to), after the cursor."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT {COLUMNS} FROM video_frames
            WHERE session_id = $1
              AND ($2::timestamptz IS NULL OR ts >= $2)
              AND ($3::timestamptz IS NULL OR ts < $3)
              AND ($4::timestamptz IS NULL OR (ts, id) > ($4, $5::uuid))
            ORDER BY ts, id
            LIMIT $6""",
        session_id,
        ts_from,
        ts_to,
        after.timestamp if after else None,
        after.id if after else None,
        limit,
    )
    return rows


async def nearest_frame(pool: Queryable, session_id: uuid.UUID, at: datetime) -> asyncpg.Record | None:
    """The session's frame closest in time to `at` (the earlier one on a tie): two index probes, one each side."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""SELECT * FROM (
                (SELECT {COLUMNS} FROM video_frames WHERE session_id = $1 AND ts <= $2 ORDER BY ts DESC, id LIMIT 1)
                UNION ALL
                (SELECT {COLUMNS} FROM video_frames WHERE session_id = $1 AND ts > $2 ORDER BY ts, id LIMIT 1)
            ) AS candidates
            ORDER BY abs(extract(epoch FROM ts - $2)), ts
            LIMIT 1""",
        session_id,
        at,
    )
    return row


async def session_started_at(pool: Queryable, session_id: uuid.UUID) -> datetime | None:
    """When the session started (telemetry's `t` counts seconds from here)."""
    started: datetime | None = await pool.fetchval(
        "SELECT started_at FROM sessions WHERE id = $1", session_id
    )
    return started


async def delete_frames_created_before(pool: Queryable, cutoff: datetime, limit: int) -> list[str]:
    """Delete up to `limit` frames stored before `cutoff`; return their store keys."""
    rows = await pool.fetch(
        """DELETE FROM video_frames WHERE id IN (
               SELECT id FROM video_frames WHERE created_at < $1 ORDER BY created_at LIMIT $2)
           RETURNING path""",
        cutoff,
        limit,
    )
    return [row["path"] for row in rows]
