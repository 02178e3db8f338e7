"""SQL for telemetry chunks, batches and laps, and for merging a session's small chunks (compaction).

One committed batch is one `telemetry_data` row (a compressed chunk) and one `telemetry_batches` row (its key
and ack). Compaction later replaces a run of small chunks by one numbered like the last it replaces, its
`part_sizes` giving each replaced chunk's sample count; chunk numbers therefore stay valid as positions.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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


LAP_COLUMNS = (
    "session_id, lap_number, t_start, t_end, lap_time_s, sector_times, valid, invalid_reason, length_m"
)


async def lock_session_for_ingest(
    conn: Queryable, session_id: uuid.UUID, driver_id: uuid.UUID, batch_key: str
) -> asyncpg.Record | None:
    """Lock the session row for this batch (batches of a session commit one at a time, in order).

    Returns its status, its track (`track_id`) and the track's sector splits, the lap length the session's own
    data measured (`measured_length_m`), the number its next chunk gets (`next_chunk_no`), what a batch's clock
    needs (`started_at`, `t_last`, and `received_at`: now, by the database's clock, which also stamped
    `started_at`) and, when a batch with this key was stored before, what its ack said: `chunk_no`,
    `sample_count`, `t_start`, `t_end`, `laps_completed`, `clock`; None when the session is not this driver's.

    `next_chunk_no` is read from the locked row, so it is current even when another transaction held the
    lock. Servers from before migration 0005 (a rolling deploy) store chunks without moving it on: the number
    after the session's last chunk, as this statement sees them, covers those, and the session's own number
    catches up with its next chunk. Remove that subquery (and `telemetry_data_pkey` from the service's
    `TAKEN_BY_ANOTHER_SERVER`) in release 0.3: a rolling deploy spans one release, and 0.2 is the first
    release every server of which runs migration 0005.
    """
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT s.status, s.track_id, s.measured_length_m, tr.sector_splits,
                  greatest(s.next_chunk_no, (SELECT coalesce(max(d.chunk_no) + 1, 0) FROM telemetry_data d
                                             WHERE d.session_id = s.id)) AS next_chunk_no,
                  s.started_at, s.t_last, statement_timestamp() AS received_at,
                  b.chunk_no, b.sample_count, b.t_start, b.t_end, b.laps_completed, b.clock
           FROM sessions s
           LEFT JOIN tracks tr ON tr.id = s.track_id
           LEFT JOIN telemetry_batches b ON b.session_id = s.id AND b.batch_key = $3
           WHERE s.id = $1 AND s.driver_id = $2
           FOR UPDATE OF s""",
        session_id,
        driver_id,
        batch_key,
    )
    return row


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
    clock: str = "sample",
) -> None:
    """Store one encoded chunk and its batch key, and fold it into the session's statistics, in one statement.

    The session is marked for compaction from this chunk on, unless it already is from an earlier one. The
    chunk and the batch keep their samples' `clock` (NULL for `sample`, as every chunk before migration 0008).
    """
    await conn.execute(
        """WITH chunk AS (
               INSERT INTO telemetry_data (session_id, chunk_no, driver_id, t_start, t_end, lap_first, lap_last,
                   sample_count, channels, payload, clock)
               VALUES ($1, $2, $3, $5, $6, $7, $8, $9, $10, $11, $17)),
           batch AS (
               INSERT INTO telemetry_batches (session_id, chunk_no, sample_count, t_start, t_end, batch_key,
                   laps_completed, clock)
               VALUES ($1, $2, $9, $5, $6, $4, $16, $17))
           UPDATE sessions SET
               sample_count = sample_count + $9,
               t_first = least(t_first, $5),
               t_last = greatest(t_last, $6),
               channels = CASE WHEN channels @> $12::text[] THEN channels
                          ELSE channels || ARRAY(SELECT unnest($12::text[]) EXCEPT SELECT unnest(channels)) END,
               distance_m = distance_m + $13,
               lap_count = lap_count + $14,
               best_lap_s = least(best_lap_s, $15),
               last_activity_at = now(),
               compact_from_chunk = coalesce(compact_from_chunk, $2),
               next_chunk_no = $2 + 1
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
        [lap.number for lap in stats.laps] or None,
        None if clock == "sample" else clock,
    )


async def insert_laps(
    conn: Queryable, session_id: uuid.UUID, driver_id: uuid.UUID, laps: Sequence[Lap]
) -> None:
    """Store completed laps; a lap number seen again (after a reset) replaces an invalid lap with a valid one."""
    await conn.executemany(
        """INSERT INTO laps (session_id, lap_number, driver_id, t_start, t_end, lap_time_s, sector_times, valid,
               invalid_reason, length_m)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (session_id, lap_number) DO UPDATE SET
               t_start = EXCLUDED.t_start, t_end = EXCLUDED.t_end, lap_time_s = EXCLUDED.lap_time_s,
               sector_times = EXCLUDED.sector_times, valid = EXCLUDED.valid,
               invalid_reason = EXCLUDED.invalid_reason, length_m = EXCLUDED.length_m
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
                lap.length_m,
            )
            for lap in laps
        ],
    )


async def chunks_in_order(
    conn: Queryable,
    session_id: uuid.UUID,
    *,
    from_chunk: int = 0,
    offset: int = 0,
    t_from: float | None = None,
    t_to: float | None = None,
    lap: int | None = None,
    limit: int = 64,
) -> list[asyncpg.Record]:
    """Up to `limit` chunks from sample `offset` of chunk `from_chunk` on, in order, that overlap the time window
    and hold the lap.

    Positions count samples from the start of a chunk as ingested, whether it was merged since or not: each
    row says how many of its leading samples lie before the position (`skip`) and the number a position in it
    counts from (`first_chunk_no`, its first part's number).
    """
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT chunk_no, channels, payload, sample_count,
               chunk_no - coalesce(cardinality(part_sizes), 1) + 1 AS first_chunk_no,
               CASE WHEN chunk_no - coalesce(cardinality(part_sizes), 1) + 1 > $2 THEN 0
                    ELSE $7::bigint + coalesce((
                        SELECT sum(size) FROM unnest(part_sizes[1 : $2 - chunk_no + cardinality(part_sizes) - 1])
                            AS size), 0)
               END AS skip
           FROM telemetry_data
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
        offset,
    )
    return rows


@dataclass(frozen=True)
class MergedChunk:
    """One chunk replacing a run of a session's chunks: their samples in one payload, their ranges joined."""

    driver_id: uuid.UUID
    t_range: tuple[float, float]
    lap_range: tuple[int | None, int | None]
    part_sizes: Sequence[int]  # samples of each chunk number it covers, in order
    channels: Sequence[str]
    payload: bytes
    received_at: datetime  # of the newest replaced chunk
    clock: str | None = None  # of the replaced chunks when they agree, else "mixed" (None: `sample`)

    @property
    def sample_count(self) -> int:
        """Samples in the chunk."""
        return sum(self.part_sizes)


async def sessions_to_compact(pool: Queryable, settle_s: float, limit: int) -> list[uuid.UUID]:
    """Up to `limit` sessions marked for compaction that have ended or hold a chunk older than `settle_s`
    seconds, the most recently active first (a backlog, such as all history after an upgrade, never holds
    up the sessions being driven now; it goes `limit` sessions a round)."""
    rows = await pool.fetch(
        """SELECT s.id FROM sessions s
           WHERE s.compact_from_chunk IS NOT NULL
             AND (s.status = 'ended' OR EXISTS (
                 SELECT 1 FROM telemetry_data d
                 WHERE d.session_id = s.id AND d.chunk_no >= s.compact_from_chunk
                   AND d.received_at < now() - make_interval(secs => $1)))
           ORDER BY s.last_activity_at DESC
           LIMIT $2""",
        settle_s,
        limit,
    )
    return [row["id"] for row in rows]


async def lock_session_for_compaction(conn: Queryable, session_id: uuid.UUID) -> asyncpg.Record | None:
    """Lock the session row as ingest does (the two take turns); its `status` and `compact_from_chunk`."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT status, compact_from_chunk FROM sessions WHERE id = $1 FOR UPDATE", session_id
    )
    return row


async def chunk_spans(
    conn: Queryable, session_id: uuid.UUID, from_chunk: int, settle_s: float, limit: int
) -> list[asyncpg.Record]:
    """Up to `limit` chunks from the one holding chunk number `from_chunk` on, in order, without payloads:
    `first_chunk_no`, `chunk_no`, `sample_count` and `settled` (received more than `settle_s` seconds ago)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT chunk_no - coalesce(cardinality(part_sizes), 1) + 1 AS first_chunk_no, chunk_no, sample_count,
               received_at < now() - make_interval(secs => $3) AS settled
           FROM telemetry_data WHERE session_id = $1 AND chunk_no >= $2
           ORDER BY chunk_no LIMIT $4""",
        session_id,
        from_chunk,
        settle_s,
        limit,
    )
    return rows


async def chunks_between(
    conn: Queryable, session_id: uuid.UUID, first: int, last: int
) -> list[asyncpg.Record]:
    """The chunks covering chunk numbers `first` to `last` (each wholly inside), in order, with everything."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT chunk_no, driver_id, t_start, t_end, lap_first, lap_last, sample_count, channels, payload,
               part_sizes, received_at, clock
           FROM telemetry_data WHERE session_id = $1 AND chunk_no BETWEEN $2 AND $3
           ORDER BY chunk_no""",
        session_id,
        first,
        last,
    )
    return rows


async def replace_chunks(
    conn: Queryable,
    session_id: uuid.UUID,
    first: int,
    last: int,
    merged: MergedChunk,
    compact_from: int | None,
) -> None:
    """Replace the chunks covering chunk numbers `first` to `last` by `merged`, numbered `last`; compaction
    looks next from `compact_from`."""
    # Two statements: the merged row takes the primary key of a row the first one deletes.
    await conn.execute(
        "DELETE FROM telemetry_data WHERE session_id = $1 AND chunk_no BETWEEN $2 AND $3",
        session_id,
        first,
        last,
    )
    await conn.execute(
        """WITH next AS (UPDATE sessions SET compact_from_chunk = $13 WHERE id = $1)
           INSERT INTO telemetry_data (session_id, chunk_no, driver_id, t_start, t_end, lap_first, lap_last,
               sample_count, channels, payload, received_at, part_sizes, clock)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14)""",
        session_id,
        last,
        merged.driver_id,
        merged.t_range[0],
        merged.t_range[1],
        merged.lap_range[0],
        merged.lap_range[1],
        merged.sample_count,
        list(merged.channels),
        merged.payload,
        merged.received_at,
        list(merged.part_sizes),
        compact_from,
        merged.clock,
    )


async def set_compact_from(conn: Queryable, session_id: uuid.UUID, chunk_no: int | None) -> None:
    """Where compaction looks next in the session (None: nothing pending until the next batch)."""
    await conn.execute("UPDATE sessions SET compact_from_chunk = $2 WHERE id = $1", session_id, chunk_no)


async def laps_of_session(pool: Queryable, session_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every completed lap of a session, in order."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"SELECT {LAP_COLUMNS} FROM laps WHERE session_id = $1 ORDER BY t_start",
        session_id,
    )
    return rows


async def lap_of_session(pool: Queryable, session_id: uuid.UUID, lap_number: int) -> asyncpg.Record | None:
    """One completed lap."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"SELECT {LAP_COLUMNS} FROM laps WHERE session_id = $1 AND lap_number = $2",
        session_id,
        lap_number,
    )
    return row


async def keep_measured_length(conn: Queryable, session_id: uuid.UUID, length_m: float) -> None:
    """Keep the lap length a session's data measured, unless it has one (sent when it was made, or measured
    before). It is the session's own: the catalogue's track is never changed by a session's data."""
    await conn.execute(
        "UPDATE sessions SET measured_length_m = $2 WHERE id = $1 AND measured_length_m IS NULL",
        session_id,
        length_m,
    )


async def best_laps(
    pool: Queryable,
    driver_ids: Sequence[uuid.UUID] | None,
    track_id: uuid.UUID | None,
    car: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    """The best valid lap of each (driver, track, car), fastest first, among the drivers given (None: all).

    A session whose track is unknown is a group of its own: its laps are never ranked with another track's."""
    rows: list[asyncpg.Record] = await pool.fetch(
        """SELECT * FROM (
               SELECT DISTINCT ON (l.driver_id, coalesce(s.track_id, s.id), lower(coalesce(s.car, '')))
                   l.session_id, l.lap_number, l.t_start, l.t_end, l.lap_time_s, l.sector_times, l.valid,
                   l.invalid_reason, l.length_m, l.driver_id, s.track_id, tr.name AS track_name,
                   tr.configuration AS track_config, tr.length_m AS track_length_m, s.car, s.started_at
               FROM laps l JOIN sessions s ON s.id = l.session_id LEFT JOIN tracks tr ON tr.id = s.track_id
               WHERE l.valid
                 AND ($1::uuid[] IS NULL OR l.driver_id = ANY($1))
                 AND ($2::uuid IS NULL OR s.track_id = $2)
                 AND ($3::text IS NULL OR lower(s.car) = lower($3))
               ORDER BY l.driver_id, coalesce(s.track_id, s.id), lower(coalesce(s.car, '')), l.lap_time_s
           ) best ORDER BY lap_time_s LIMIT $4""",
        list(driver_ids) if driver_ids is not None else None,
        track_id,
        car,
        limit,
    )
    return rows
