"""SQL for tracks."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from pitbox.db.types import Queryable

COLUMNS = "id, name, country, length_m, sector_splits, corners, created_at"


async def insert_track(
    pool: Queryable,
    name: str,
    country: str | None,
    length_m: float | None,
    splits: list[float],
    corners: Any,
) -> asyncpg.Record:
    """Insert a track; UniqueViolationError when the name exists."""
    row: asyncpg.Record | None = await pool.fetchrow(
        f"INSERT INTO tracks (name, country, length_m, sector_splits, corners) VALUES ($1, $2, $3, $4, $5) "
        f"RETURNING {COLUMNS}",  # noqa: S608
        name,
        country,
        length_m,
        splits,
        corners,
    )
    assert row is not None
    return row


async def track_by_id(pool: Queryable, track_id: uuid.UUID) -> asyncpg.Record | None:
    """One track."""
    return await pool.fetchrow(f"SELECT {COLUMNS} FROM tracks WHERE id = $1", track_id)  # noqa: S608


async def all_tracks(pool: Queryable) -> list[asyncpg.Record]:
    """Every track by name."""
    return list(await pool.fetch(f"SELECT {COLUMNS} FROM tracks ORDER BY name"))  # noqa: S608


async def update_track(pool: Queryable, track_id: uuid.UUID, fields: dict[str, Any]) -> asyncpg.Record | None:
    """Update the given columns of a track (names come from our own model, values are parameters)."""
    allowed = ("name", "country", "length_m", "sector_splits", "corners")
    names = [n for n in allowed if n in fields]
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names)) or "name = name"
    return await pool.fetchrow(
        f"UPDATE tracks SET {sets} WHERE id = $1 RETURNING {COLUMNS}",  # noqa: S608
        track_id,
        *(fields[n] for n in names),
    )


async def delete_track(pool: Queryable, track_id: uuid.UUID) -> bool:
    """Delete a track (sessions keep their data, losing the link)."""
    return bool(await pool.fetchval("DELETE FROM tracks WHERE id = $1 RETURNING true", track_id))
