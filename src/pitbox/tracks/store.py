"""SQL for tracks."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from pitbox.db.types import Connection, Queryable

COLUMNS = "id, name, configuration, country, length_m, sector_splits, corners, created_at"


async def insert_track(
    pool: Queryable,
    name: str,
    country: str | None,
    length_m: float | None,
    splits: list[float],
    corners: Any,
    configuration: str = "",
) -> asyncpg.Record:
    """Insert a track (the caller has checked, under `lock_track_name`, that it is not there already)."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"""INSERT INTO tracks (name, configuration, country, length_m, sector_splits, corners)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}""",
        name,
        configuration,
        country,
        length_m,
        splits,
        corners,
    )
    assert row is not None
    return row


async def lock_track_name(conn: Connection, name: str, configuration: str) -> None:
    """Serialise, until the transaction ends, everyone matching or creating this name and configuration."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('track:' || lower($1) || '|' || lower($2)))",
        name,
        configuration,
    )


async def tracks_named(
    pool: Queryable, name: str, configuration: str, exclude: uuid.UUID | None = None
) -> list[asyncpg.Record]:
    """Every track with this name and configuration (case-insensitive), oldest first."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""SELECT {COLUMNS} FROM tracks
            WHERE lower(name) = lower($1) AND lower(configuration) = lower($2)
              AND ($3::uuid IS NULL OR id <> $3)
            ORDER BY created_at, id""",
        name,
        configuration,
        exclude,
    )
    return rows


async def last_driven_track(
    conn: Queryable, driver_id: uuid.UUID, track_ids: list[uuid.UUID]
) -> uuid.UUID | None:
    """Which of these tracks the driver's most recent session on any of them was at (None: none)."""
    value: uuid.UUID | None = await conn.fetchval(
        "SELECT track_id FROM sessions WHERE driver_id = $1 AND track_id = ANY($2::uuid[]) "
        "ORDER BY started_at DESC, id LIMIT 1",
        driver_id,
        track_ids,
    )
    return value


async def track_by_id(pool: Queryable, track_id: uuid.UUID) -> asyncpg.Record | None:
    """One track."""
    return await pool.fetchrow(f"SELECT {COLUMNS} FROM tracks WHERE id = $1", track_id)


async def all_tracks(pool: Queryable) -> list[asyncpg.Record]:
    """Every track by name."""
    return list(await pool.fetch(f"SELECT {COLUMNS} FROM tracks ORDER BY name, configuration"))


async def update_track(pool: Queryable, track_id: uuid.UUID, fields: dict[str, Any]) -> asyncpg.Record | None:
    """Update the given columns of a track (names come from our own model, values are parameters)."""
    allowed = ("name", "configuration", "country", "length_m", "sector_splits", "corners")
    names = [n for n in allowed if n in fields]
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names)) or "name = name"
    return await pool.fetchrow(
        f"UPDATE tracks SET {sets} WHERE id = $1 RETURNING {COLUMNS}",
        track_id,
        *(fields[n] for n in names),
    )


async def delete_track(pool: Queryable, track_id: uuid.UUID) -> bool:
    """Delete a track (sessions keep their data, losing the link)."""
    return bool(await pool.fetchval("DELETE FROM tracks WHERE id = $1 RETURNING true", track_id))
