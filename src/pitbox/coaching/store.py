"""SQL for coaching: feedback rows (ai_feedback), what a session says about coaching, reference laps, corners."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from pitbox.db.types import Queryable

FEEDBACK_COLUMNS = """id, session_id, driver_id, lap_number, kind, source, status, summary, items, audio_key,
    latency_ms, created_by, created_at"""


async def insert_feedback(
    pool: Queryable,
    *,
    session_id: uuid.UUID,
    driver_id: uuid.UUID,
    lap_number: int | None,
    kind: str,
    source: str,
    status: str,
    summary: str,
    items: list[dict[str, Any]],
    latency_ms: int | None,
    created_by: uuid.UUID | None,
    audio_key: str | None = None,
) -> asyncpg.Record:
    """Store one feedback and return its row."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""INSERT INTO ai_feedback (session_id, driver_id, lap_number, kind, source, status, summary, items,
                latency_ms, created_by, audio_key)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            RETURNING {FEEDBACK_COLUMNS}""",
        session_id,
        driver_id,
        lap_number,
        kind,
        source[:100],
        status,
        summary,
        items,
        latency_ms,
        created_by,
        audio_key,
    )
    assert row is not None
    return row


async def feedback_by_id(pool: Queryable, feedback_id: uuid.UUID) -> asyncpg.Record | None:
    """One feedback."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"SELECT {FEEDBACK_COLUMNS} FROM ai_feedback WHERE id = $1",
        feedback_id,
    )
    return row


async def feedback_of_session(pool: Queryable, session_id: uuid.UUID, limit: int) -> list[asyncpg.Record]:
    """A session's feedback, oldest first."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT {FEEDBACK_COLUMNS} FROM ai_feedback WHERE session_id = $1
            ORDER BY created_at, id LIMIT $2""",
        session_id,
        limit,
    )
    return rows


async def set_feedback_status(
    pool: Queryable, feedback_id: uuid.UUID, status: str, from_status: str
) -> asyncpg.Record | None:
    """Move a feedback from `from_status` to `status`; None when it was not in `from_status`."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""UPDATE ai_feedback SET status = $2 WHERE id = $1 AND status = $3
            RETURNING {FEEDBACK_COLUMNS}""",
        feedback_id,
        status,
        from_status,
    )
    return row


async def set_feedback_audio(pool: Queryable, feedback_id: uuid.UUID, audio_key: str) -> None:
    """Remember the spoken audio of a feedback."""
    await pool.execute("UPDATE ai_feedback SET audio_key = $2 WHERE id = $1", feedback_id, audio_key)


async def coaching_session(pool: Queryable, session_id: uuid.UUID) -> asyncpg.Record | None:
    """What coaching needs to know of a session: its driver, catalogue track (id, name, length, corners), what
    its own data measured (`measured_length_m`, `session_corners`), car, start, status and coaching switches
    (approval, cues muted)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        """SELECT s.id, s.driver_id, s.track_id, s.car, s.coaching_enabled, s.approval_required, s.started_at,
                  s.status, s.cues_muted, s.measured_length_m, s.corners AS session_corners,
                  tr.name AS track_name, tr.length_m AS track_length_m, tr.corners AS track_corners
           FROM sessions s LEFT JOIN tracks tr ON tr.id = s.track_id WHERE s.id = $1""",
        session_id,
    )
    return row


async def set_session_approval(pool: Queryable, session_id: uuid.UUID, approval_required: bool) -> None:
    """Switch the approval gate of a session."""
    await pool.execute(
        "UPDATE sessions SET approval_required = $2 WHERE id = $1", session_id, approval_required
    )


async def lap_record(pool: Queryable, session_id: uuid.UUID, lap_number: int) -> asyncpg.Record | None:
    """One stored lap (time and validity)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        """SELECT session_id, lap_number, lap_time_s, valid, invalid_reason
           FROM laps WHERE session_id = $1 AND lap_number = $2""",
        session_id,
        lap_number,
    )
    return row


async def last_completed_lap(pool: Queryable, session_id: uuid.UUID) -> int | None:
    """The number of the session's most recently completed lap (valid or not); None before the first."""
    number: int | None = await pool.fetchval(
        "SELECT lap_number FROM laps WHERE session_id = $1 ORDER BY t_end DESC LIMIT 1", session_id
    )
    return number


async def best_reference_lap(
    pool: Queryable,
    driver_id: uuid.UUID,
    track_id: uuid.UUID | None,
    car: str | None,
    session_id: uuid.UUID,
    exclude: tuple[uuid.UUID, int],
    length_m: float | None,
) -> asyncpg.Record | None:
    """The driver's fastest valid lap on the session's track and car, in any session (this session only when
    the track is unknown), other than `exclude`, whose measured length is within 1 % of `length_m` (when both
    are known): a lap on another layout is never a reference. With its session's start and track."""
    row: asyncpg.Record | None = await pool.fetchrow(
        """SELECT l.session_id, l.lap_number, l.lap_time_s, l.t_start, l.length_m, s.started_at, s.track_id
           FROM laps l JOIN sessions s ON s.id = l.session_id
           WHERE l.driver_id = $1 AND l.valid
             AND (($2::uuid IS NOT NULL AND s.track_id = $2 AND lower(coalesce(s.car, '')) = lower(coalesce($3, '')))
                  OR ($2::uuid IS NULL AND l.session_id = $4))
             AND NOT (l.session_id = $5 AND l.lap_number = $6)
             AND (l.length_m IS NULL OR $7::float8 IS NULL
                  OR abs(l.length_m - $7) <= 0.01 * greatest(l.length_m, $7))
           ORDER BY l.lap_time_s, l.session_id, l.lap_number LIMIT 1""",
        driver_id,
        track_id,
        car,
        session_id,
        exclude[0],
        exclude[1],
        length_m,
    )
    return row


async def session_track(pool: Queryable, session_id: uuid.UUID) -> asyncpg.Record | None:
    """A session's track id and name (None when the session does not exist)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        """SELECT s.track_id, tr.name AS track_name FROM sessions s LEFT JOIN tracks tr ON tr.id = s.track_id
           WHERE s.id = $1""",
        session_id,
    )
    return row


async def remember_session_corners(
    pool: Queryable, session_id: uuid.UUID, corners: list[dict[str, Any]]
) -> None:
    """Keep the corners coaching first found in a session's laps with that session (the catalogue's track keeps
    only the corners a person gave it), so its later laps are coached on the same corners."""
    await pool.execute(
        "UPDATE sessions SET corners = $2 WHERE id = $1 AND corners IS NULL", session_id, corners
    )
