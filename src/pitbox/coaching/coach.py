"""The coaching pipeline for one lap: analysed against its reference on the track's corners (the catalogue's,
else the session's own), phrased, stored and pushed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

import asyncpg

from pitbox.coaching import store
from pitbox.coaching.analyst import analyse_lap
from pitbox.coaching.feedback import FeedbackWriter
from pitbox.coaching.laps import LapData, StoredLaps
from pitbox.coaching.models import Corner
from pitbox.coaching.references import Reference, References
from pitbox.coaching.sources import Phrasing
from pitbox.tracks.service import agreed_length, same_length


class Coach:
    """Coaches a lap against a reference; a stored lap against its default reference."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        laps: StoredLaps,
        references: References,
        phrasing: Phrasing,
        writer: FeedbackWriter,
        counters: Counter[str],
    ) -> None:
        self._pool = pool
        self._laps = laps
        self._references = references
        self._phrasing = phrasing
        self._writer = writer
        self._counters = counters

    async def coach_stored_lap(
        self, session_id: uuid.UUID, lap_number: int, *, started: float | None = None
    ) -> dict[str, Any] | None:
        """Coach a stored lap against the driver's best on the same track and car, store and push the
        feedback; None when there is nothing worth saying (coaching off, invalid lap, no reference yet)."""
        started = time.perf_counter() if started is None else started
        session = await store.coaching_session(self._pool, session_id)
        if session is None or not session["coaching_enabled"]:
            return None
        lap = await self._laps.lap(session_id, lap_number)
        if not lap.valid:
            self._counters["silent"] += 1
            return None
        reference = await self._references.default(session, lap)
        if reference is None:
            self._counters["silent"] += 1
            return None
        return await self.coach(session, lap, reference, started, created_by=None, live=True)

    async def coach(
        self,
        session: asyncpg.Record,
        lap: LapData,
        reference: Reference,
        started: float,
        created_by: uuid.UUID | None,
        *,
        live: bool,
        telemetry_data: Mapping[str, Any] | None = None,
        plan_cues: bool | None = None,
    ) -> dict[str, Any] | None:
        """Analyse, phrase, store and push; None when live coaching has nothing worth saying."""
        # The catalogue track's length and corners (a person's), else what this session's own data measured;
        # neither where the lap's own length says it was driven elsewhere.
        on_catalogue = same_length(lap.length_m, session["track_length_m"])
        on_own = same_length(lap.length_m, session["measured_length_m"])
        track_length = agreed_length(lap.length_m, session["track_length_m"], session["measured_length_m"])
        corners = (
            (on_catalogue and _stored_corners(session["track_corners"]))
            or (on_own and _stored_corners(session["session_corners"]))
            or None
        )
        analysis = await asyncio.to_thread(
            analyse_lap,
            lap.columns,
            reference.lap.columns,
            lap_number=lap.number,
            lap_valid=lap.valid,
            invalid_reasons=lap.invalid_reasons,
            reference_label=reference.label,
            lap_time=lap.lap_time,
            reference_time=reference.lap.lap_time,
            track_length=track_length or lap.length_m,
            corners=corners,
            new_best=reference.new_best,
        )
        if analysis.silent_reason is not None and live:
            self._counters["silent"] += 1
            return None
        if corners is None and session["track_id"] is not None and track_length and analysis.corners:
            await store.remember_session_corners(
                self._pool, session["id"], [result.corner.to_json() for result in analysis.corners]
            )
        phrased = await self._phrasing.phrase(session, analysis, lap, reference.lap, telemetry_data)
        cue_plan = (analysis, lap, reference.lap) if (live if plan_cues is None else plan_cues) else None
        return await self._writer.store_phrased(
            session, lap.number, phrased, started, created_by, cue_plan=cue_plan
        )


def _stored_corners(raw: Any) -> list[Corner] | None:
    """The corners kept with the track, when they have the shape this module writes."""
    if not isinstance(raw, list) or not raw:
        return None
    try:
        return [
            Corner(name=str(c["name"]), apex=float(c["apex"]), start=float(c["from"]), end=float(c["to"]))
            for c in raw
        ]
    except (KeyError, TypeError, ValueError):
        return None
