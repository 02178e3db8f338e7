"""SQL for sessions: create, list with filters (keyset-paged), read one with its stats, end."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from pitbox.db.types import Queryable
from pitbox.sessions.models import SessionCursor, SessionFilter

# `track_length_m`: the catalogue track's length, else the one this session's data measured (`measured_length_m`).
COLUMNS = """s.id, s.driver_id, s.track_id, tr.name AS track_name, tr.configuration AS track_config,
    coalesce(tr.length_m, s.measured_length_m) AS track_length_m, tr.length_m AS catalogue_length_m,
    s.measured_length_m, s.name, s.car,
    s.sim, s.type, s.status, s.started_at, s.ended_at, s.last_activity_at, s.sample_count, s.channels, s.t_first,
    s.t_last, s.distance_m, s.lap_count, s.best_lap_s, s.approval_required, s.cues_muted"""


async def insert_session(
    pool: Queryable,
    driver_id: uuid.UUID,
    name: str,
    track_id: uuid.UUID | None,
    car: str | None,
    sim: str | None,
    session_type: str,
    created_by: uuid.UUID | None,
    measured_length_m: float | None,
) -> asyncpg.Record:
    """Insert an active session (with the lap length its data measured, if known) and return it with its track."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""WITH s AS (
                INSERT INTO sessions (driver_id, name, track_id, car, sim, type, created_by, measured_length_m)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *)
            SELECT {COLUMNS} FROM s LEFT JOIN tracks tr ON tr.id = s.track_id""",
        driver_id,
        name,
        track_id,
        car,
        sim,
        session_type,
        created_by,
        measured_length_m,
    )
    assert row is not None
    return row


async def session_by_id(pool: Queryable, session_id: uuid.UUID) -> asyncpg.Record | None:
    """One session with its track's name and length."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"SELECT {COLUMNS} FROM sessions s LEFT JOIN tracks tr ON tr.id = s.track_id WHERE s.id = $1",
        session_id,
    )
    return row


async def sessions_of_driver(
    pool: Queryable,
    driver_id: uuid.UUID,
    where: SessionFilter,
    after: SessionCursor | None,
    limit: int,
) -> list[asyncpg.Record]:
    """A page of a driver's sessions, newest first, matching every filter given."""
    track_id: uuid.UUID | None = None
    track_name: str | None = None
    if where.track is not None:
        try:
            track_id = uuid.UUID(where.track)
        except ValueError:
            track_name = where.track
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT {COLUMNS} FROM sessions s LEFT JOIN tracks tr ON tr.id = s.track_id
            WHERE s.driver_id = $1
              AND ($2::uuid IS NULL OR s.track_id = $2)
              AND ($3::text IS NULL OR lower(tr.name) = lower($3))
              AND ($4::text IS NULL OR lower(s.car) = lower($4))
              AND ($5::timestamptz IS NULL OR s.started_at >= $5)
              AND ($6::timestamptz IS NULL OR s.started_at < $6)
              AND ($7::float8 IS NULL OR s.best_lap_s < $7)
              AND ($8::text IS NULL OR s.status = $8)
              AND ($9::timestamptz IS NULL OR s.started_at < $9 OR (s.started_at = $9 AND s.id > $10))
            ORDER BY s.started_at DESC, s.id
            LIMIT $11""",
        driver_id,
        track_id,
        track_name,
        where.car,
        where.started_from,
        where.started_to,
        where.best_lap_below,
        where.status,
        after.started_at if after else None,
        after.id if after else None,
        limit,
    )
    return rows


async def end_session(pool: Queryable, session_id: uuid.UUID) -> bool:
    """Mark an active session ended now; False when it was already ended."""
    result: str = await pool.execute(
        """UPDATE sessions SET status = 'ended', ended_at = greatest(now(), started_at)
           WHERE id = $1 AND status = 'active'""",
        session_id,
    )
    return result.endswith(" 1")


async def end_idle_sessions(pool: Queryable, idle_since: datetime) -> list[asyncpg.Record]:
    """End every active session with no activity since `idle_since`; returns (id, driver_id) of each."""
    rows: list[asyncpg.Record] = await pool.fetch(
        """UPDATE sessions SET status = 'ended', ended_at = greatest(last_activity_at, started_at)
           WHERE status = 'active' AND last_activity_at < $1
           RETURNING id, driver_id""",
        idle_since,
    )
    return rows
