"""The lap a lap is coached against when none is named: the driver's best valid lap on the same track, car and
layout length, named for what it is ("your best lap", "your previous best lap", "your next-best lap")."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from pitbox.coaching import store
from pitbox.coaching.laps import LapData, StoredLaps


@dataclass(frozen=True, slots=True)
class Reference:
    """The lap a lap is coached against, how the coaching names it, and whether the lap beat it."""

    lap: LapData
    label: str
    new_best: bool = False


class References:
    """Finds the default reference lap of a lap."""

    def __init__(self, pool: asyncpg.Pool, laps: StoredLaps) -> None:
        self._pool = pool
        self._laps = laps

    async def default(self, session: asyncpg.Record, lap: LapData) -> Reference | None:
        """The driver's best valid lap on this track and car (and layout length), other than `lap`.

        When `lap` is faster, it is the new best: the reference is then the previous best (or, for an old lap
        coached on request, the next best), and is named so."""
        exclude = (session["id"], lap.number if lap.number is not None else -1)
        row = await store.best_reference_lap(
            self._pool,
            session["driver_id"],
            session["track_id"],
            session["car"],
            session["id"],
            exclude,
            lap.length_m,
        )
        if row is None:
            return None
        reference = await self._laps.lap(row["session_id"], row["lap_number"])
        if lap.valid and lap.lap_time is not None and lap.lap_time < row["lap_time_s"]:
            if _driven_before(row, session, lap):
                return Reference(reference, "your previous best lap", new_best=True)
            return Reference(reference, "your next-best lap")
        return Reference(reference, "your best lap")


def _driven_before(row: asyncpg.Record, session: asyncpg.Record, lap: LapData) -> bool:
    """Whether the reference lap (`row`) was driven before `lap` (a lap sent inline is the latest)."""
    if lap.t_start is None:
        return True
    if row["session_id"] == session["id"]:
        return bool(row["t_start"] < lap.t_start)
    return bool(row["started_at"] < session["started_at"])
