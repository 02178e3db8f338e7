"""SQL for telemetry chunks and laps. One committed batch is one `telemetry_data` row (a compressed chunk)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from pitbox.db.types import Queryable
from pitbox.telemetry.laps import Lap


@dataclass(frozen=True)
class BatchStats:
    """What one batch adds to its session's statistics."""

    sample_count: int
    channels: Sequence[str]  # as the client named them (the chunk's own list is in payload order)
    distance_m: float
    laps: Sequence[Lap]


LAP_COLUMNS = "session_id, lap_number, t_start, t_end, lap_time_s, sector_times, valid, invalid_reason"


async def lock_session_for_ingest(
    conn: Queryable, session_id: uuid.UUID, driver_id: uuid.UUID, batch_key: str
) -> asyncpg.Record | None:
    """Lock the session row for this batch (batches of a session commit one at a time, in order).

    Returns its status, its track's sector splits and, when a batch with this key was stored before, that
    chunk's `chunk_no`, `sample_count`, `t_start`, `t_end`; None when the session is not this driver's.
    """
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT s.status, tr.sector_splits, d.chunk_no, d.sample_count, d.t_start, d.t_end
           FROM sessions s
           LEFT JOIN tracks tr ON tr.id = s.track_id
           LEFT JOIN telemetry_data d ON d.session_id = s.id AND d.batch_key = $3
           WHERE s.id = $1 AND s.driver_id = $2
           FOR UPDATE OF s""",
        session_id,
        driver_id,
        batch_key,
    )
    return row


async def next_chunk_no(conn: Queryable, session_id: uuid.UUID) -> int:
    """The number the session's next chunk gets (0 for the first)."""
    value = await conn.fetchval(
        "SELECT coalesce(max(chunk_no) + 1, 0) FROM telemetry_data WHERE session_id = $1", session_id
    )
    return int(value)


async def insert_chunk(
    conn: Queryable,
    session_id: uuid.UUID,
    chunk_no: int,
    driver_id: uuid.UUID,
    batch_key: str,
    t_range: tuple[float, float],
    lap_range: tuple[int | None, int | None],
    channels: Sequence[str],
    payload: bytes,
    stats: BatchStats,
) -> None:
    """Store one encoded chunk and fold it into the session's running statistics, in one statement."""
    await conn.execute(
        """WITH chunk AS (
               INSERT INTO telemetry_data (session_id, chunk_no, driver_id, batch_key, t_start, t_end, lap_first,
                   lap_last, sample_count, channels, payload)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11))
           UPDATE sessions SET
               sample_count = sample_count + $9,
               t_first = least(t_first, $5),
               t_last = greatest(t_last, $6),
               channels = CASE WHEN channels @> $12::text[] THEN channels
                          ELSE channels || ARRAY(SELECT unnest($12::text[]) EXCEPT SELECT unnest(channels)) END,
               distance_m = distance_m + $13,
               lap_count = lap_count + $14,
               best_lap_s = least(best_lap_s, $15),
               last_activity_at = now()
           WHERE id = $1""",
        session_id,
        chunk_no,
        driver_id,
        batch_key,
        t_range[0],
        t_range[1],
        lap_range[0],
        lap_range[1],
        stats.sample_count,
        list(channels),
        payload,
        list(stats.channels),
        stats.distance_m,
        len(stats.laps),
        min((lap.lap_time for lap in stats.laps if lap.valid), default=None),
    )


async def insert_laps(
    conn: Queryable, session_id: uuid.UUID, driver_id: uuid.UUID, laps: Sequence[Lap]
) -> None:
    """Store completed laps; a lap number seen again (after a reset) replaces an invalid lap with a valid one."""
    await conn.executemany(
        """INSERT INTO laps (session_id, lap_number, driver_id, t_start, t_end, lap_time_s, sector_times, valid,
               invalid_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (session_id, lap_number) DO UPDATE SET
               t_start = EXCLUDED.t_start, t_end = EXCLUDED.t_end, lap_time_s = EXCLUDED.lap_time_s,
               sector_times = EXCLUDED.sector_times, valid = EXCLUDED.valid,
               invalid_reason = EXCLUDED.invalid_reason
           WHERE NOT laps.valid AND EXCLUDED.valid""",
        [
            (
                session_id,
                lap.number,
                driver_id,
                lap.t_start,
                lap.t_end,
                lap.lap_time,
                list(lap.sectors),
                lap.valid,
                ",".join(lap.invalid_reasons) or None,
            )
            for lap in laps
        ],
    )


async def laps_ending_in_chunk(
    conn: Queryable, session_id: uuid.UUID, chunk_no: int, t_end: float
) -> list[int]:
    """Numbers of the laps completed by a stored chunk (between the previous chunk's end and its own)."""
    rows = await conn.fetch(
        """SELECT lap_number FROM laps WHERE session_id = $1 AND t_end <= $3
             AND t_end > coalesce((SELECT t_end FROM telemetry_data WHERE session_id = $1 AND chunk_no = $2 - 1),
                                  '-infinity')
           ORDER BY t_end""",
        session_id,
        chunk_no,
        t_end,
    )
    return [int(row["lap_number"]) for row in rows]


async def chunks_in_order(
    conn: Queryable,
    session_id: uuid.UUID,
    *,
    from_chunk: int = 0,
    t_from: float | None = None,
    t_to: float | None = None,
    lap: int | None = None,
    limit: int = 64,
) -> list[asyncpg.Record]:
    """Up to `limit` chunks from `from_chunk` on, in order, that overlap the time window and hold the lap."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT chunk_no, channels, payload, sample_count FROM telemetry_data
           WHERE session_id = $1 AND chunk_no >= $2
             AND ($3::float8 IS NULL OR t_end >= $3)
             AND ($4::float8 IS NULL OR t_start <= $4)
             AND ($5::int IS NULL OR (lap_first IS NOT NULL AND lap_first <= $5 AND lap_last >= $5))
           ORDER BY chunk_no
           LIMIT $6""",
        session_id,
        from_chunk,
        t_from,
        t_to,
        lap,
        limit,
    )
    return rows


async def laps_of_session(pool: Queryable, session_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every completed lap of a session, in order."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"SELECT {LAP_COLUMNS} FROM laps WHERE session_id = $1 ORDER BY t_start",  # noqa: S608
        session_id,
    )
    return rows


async def lap_of_session(pool: Queryable, session_id: uuid.UUID, lap_number: int) -> asyncpg.Record | None:
    """One completed lap."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"SELECT {LAP_COLUMNS} FROM laps WHERE session_id = $1 AND lap_number = $2",  # noqa: S608
        session_id,
        lap_number,
    )
    return row


async def track_length_of_session(pool: Queryable, session_id: uuid.UUID) -> float | None:
    """The length in metres of the session's track, when known."""
    value = await pool.fetchval(
        "SELECT tr.length_m FROM sessions s JOIN tracks tr ON tr.id = s.track_id WHERE s.id = $1", session_id
    )
    return None if value is None else float(value)


async def best_laps(
    pool: Queryable,
    driver_ids: Sequence[uuid.UUID] | None,
    track_id: uuid.UUID | None,
    car: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    """The best valid lap of each (driver, track, car), fastest first, among the drivers given (None: all)."""
    rows: list[asyncpg.Record] = await pool.fetch(
        """SELECT * FROM (
               SELECT DISTINCT ON (l.driver_id, s.track_id, lower(s.car))
                   l.session_id, l.lap_number, l.t_start, l.t_end, l.lap_time_s, l.sector_times, l.valid,
                   l.invalid_reason, l.driver_id, s.track_id, tr.name AS track_name, s.car, s.started_at
               FROM laps l JOIN sessions s ON s.id = l.session_id LEFT JOIN tracks tr ON tr.id = s.track_id
               WHERE l.valid
                 AND ($1::uuid[] IS NULL OR l.driver_id = ANY($1))
                 AND ($2::uuid IS NULL OR s.track_id = $2)
                 AND ($3::text IS NULL OR lower(s.car) = lower($3))
               ORDER BY l.driver_id, s.track_id, lower(s.car), l.lap_time_s
           ) best ORDER BY lap_time_s LIMIT $4""",
        list(driver_ids) if driver_ids is not None else None,
        track_id,
        car,
        limit,
    )
    return rows
