"""The stored laps of sessions: a session's laps, two laps compared on distance, the time a lap passed a
point, and the best laps per driver, track and car."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import numpy as np

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.errors import NotFound
from pitbox.sessions import store as session_store
from pitbox.telemetry import store
from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.compare import compare_laps, lap_samples
from pitbox.telemetry.errors import LapTooShort, MissingChannels
from pitbox.telemetry.laps import Lap
from pitbox.telemetry.models import BestLap, CompletedLap, FloatArray
from pitbox.telemetry.reader import Selection, concatenate, read_blocks
from pitbox.tracks.service import DrivenOn, agreed_length, refuse_other_track


def lap_from_row(row: asyncpg.Record) -> Lap:
    """A stored lap as the lap detector's `Lap`."""
    reason = row["invalid_reason"]
    return Lap(
        number=row["lap_number"],
        t_start=row["t_start"],
        t_end=row["t_end"],
        lap_time=row["lap_time_s"],
        sectors=tuple(row["sector_times"]),
        valid=row["valid"],
        invalid_reasons=tuple(reason.split(",")) if reason else (),
        length_m=row["length_m"],
    )


class LapReads:
    """Reads of stored laps, access checked first."""

    def __init__(self, pool: asyncpg.Pool, access: Access, codec: ChunkCodec) -> None:
        self._pool = pool
        self._access = access
        self._codec = codec

    async def laps(self, principal: Principal, session_id: uuid.UUID) -> list[CompletedLap]:
        """The completed laps of a session, in order."""
        await self._access.require_session(principal, session_id, scope="telemetry:read")
        return [CompletedLap.from_row(row) for row in await store.laps_of_session(self._pool, session_id)]

    async def compare(
        self,
        principal: Principal,
        session_id: uuid.UUID,
        lap_number: int,
        other: tuple[uuid.UUID, int],
        channels: list[str],
        points: int | None,
    ) -> dict[str, Any]:
        """Lap `lap_number` (`a`) against another lap (`b`, of any session the caller may read), aligned on
        distance; `delta` is a's elapsed time minus b's at each distance: positive where a is behind, the sign
        coaching uses (b is the reference)."""
        await self._access.require_session(principal, session_id, scope="telemetry:read")
        if other[0] != session_id:
            await self._access.require_session(principal, other[0], scope="telemetry:read")
        session_a, lap_a = await self._stored_lap(session_id, lap_number)
        session_b, lap_b = await self._stored_lap(other[0], other[1])
        refuse_other_track(_driven_on(session_a, lap_a), _driven_on(session_b, lap_b), field="with")
        samples_a = await self._lap_samples(session_a, lap_a, channels)
        samples_b = await self._lap_samples(session_b, lap_b, channels)
        # The track's length where this lap agrees with it (else what the session measured, else the data's).
        length = agreed_length(
            lap_a["length_m"], session_a["catalogue_length_m"], session_a["measured_length_m"]
        )
        # The other lap is the reference, as in coaching: delta = this lap's time - the other's (+: behind).
        result = compare_laps(samples_b, samples_a, channels=channels, points=points, track_length=length)
        return {
            "a": {**CompletedLap.from_row(lap_a).wire(), "channels": result.b},
            "b": {**CompletedLap.from_row(lap_b).wire(), "channels": result.a},
            "trackLength": result.track_length,
            "distance": result.distance,
            "delta": result.delta,
        }

    async def time_at_lap_distance(
        self, principal: Principal, session_id: uuid.UUID, lap_number: int, fraction: float
    ) -> float:
        """Session time `t` at which lap `lap_number` passed `fraction` (0..1) of the lap distance."""
        await self._access.require_session(principal, session_id, scope="telemetry:read")
        session, lap = await self._stored_lap(session_id, lap_number)
        columns = await self._lap_samples(session, lap, [])
        if "lapDistPct" not in columns:
            raise MissingChannels("this session has no lapDistPct channel to place a lap distance")
        pct = np.nan_to_num(columns["lapDistPct"], nan=0.0).copy()
        # The samples just before and after the lap's lines read near 1 and near 0: before 0, after 1.
        if pct.size > 1 and pct[0] > 0.5:
            pct[0] -= 1.0
        if pct.size > 1 and pct[-1] < 0.5:
            pct[-1] += 1.0
        return float(np.interp(fraction, np.maximum.accumulate(pct), columns["t"]))

    async def _stored_lap(
        self, session_id: uuid.UUID, lap_number: int
    ) -> tuple[asyncpg.Record, asyncpg.Record]:
        """(the session with its track, the stored lap); NotFound for a lap the session does not have."""
        row = await store.lap_of_session(self._pool, session_id, lap_number)
        if row is None:
            raise NotFound(f"lap {lap_number} of session {session_id} not found")
        session = await session_store.session_by_id(self._pool, session_id)
        assert session is not None
        return session, row

    async def _lap_samples(
        self, session: asyncpg.Record, row: asyncpg.Record, channels: list[str]
    ) -> dict[str, FloatArray]:
        """A stored lap's samples of `channels`, with what aligning it needs."""
        session_id, lap_number = session["id"], row["lap_number"]
        wanted = [
            "t",
            *(name for name in ("lapDistPct", "lapDist", "speed", *channels) if name in session["channels"]),
        ]
        names = list(dict.fromkeys(wanted))
        # One second either side: the samples around the line crossings that interpolation needs.
        selection = Selection(t_from=row["t_start"] - 1.0, t_to=row["t_end"] + 1.0)
        blocks = [
            block.columns
            async for block in read_blocks(self._pool, self._codec, session_id, names, selection)
        ]
        columns = dict(zip(names, concatenate(names, blocks), strict=True))
        if columns["t"].size < 2:
            raise LapTooShort(f"lap {lap_number} has no stored samples")
        return lap_samples(columns, lap_from_row(row))

    async def best_laps(
        self,
        principal: Principal,
        driver_id: uuid.UUID | None,
        track_id: uuid.UUID | None,
        car: str | None,
        limit: int,
    ) -> list[BestLap]:
        """The best valid lap per driver, track and car, fastest first, among the drivers the caller sees."""
        if driver_id is not None:
            await self._access.require_driver(principal, driver_id, scope="telemetry:read")
            drivers: list[uuid.UUID] | None = [driver_id]
        else:
            self._access.require_scope(principal, "telemetry:read")
            drivers = await self._access.visible_drivers(principal)
        rows = await store.best_laps(self._pool, drivers, track_id, car, limit)
        return [BestLap.from_row(row) for row in rows]


def _driven_on(session: asyncpg.Record, lap: asyncpg.Record) -> DrivenOn:
    return DrivenOn(session["track_id"], session["track_name"], lap["length_m"])
