"""Coaching on request (POST /api/ai/feedback): the lap the telemetry object names, inline, or the session's last;
against the reference it names, or the driver's best."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.coaching import store
from pitbox.coaching.agent import AgentClient, AgentFailure
from pitbox.coaching.coach import Coach
from pitbox.coaching.errors import InvalidLap
from pitbox.coaching.feedback import FeedbackWriter, Phrased
from pitbox.coaching.laps import MAX_LAP_NUMBER, LapData, StoredLaps, inline_lap, lap_number
from pitbox.coaching.references import Reference, References
from pitbox.errors import Invalid, NotFound
from pitbox.tracks.service import DrivenOn, refuse_other_track

#: Fields of POST /api/ai/feedback's `telemetryData` that are the request's own, not a telemetry sample's.
REQUEST_FIELDS = frozenset({"lap", "lapNumber", "lapTime", "valid", "reference"})
#: What an agent that asks for telemetry gets when there is no lap yet: nothing on no grid.
NO_LAP_TELEMETRY: dict[str, Any] = {"distance": [], "delta": [], "lap": {}, "reference": {}}


@dataclass(frozen=True, slots=True)
class _Requested:
    """A reference the caller named, with the track of its session (None for one sent inline)."""

    reference: Reference
    track_id: uuid.UUID | None
    track_name: str | None
    inline: bool


class FeedbackRequests:
    """Answers POST /api/ai/feedback."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        access: Access,
        laps: StoredLaps,
        references: References,
        coach: Coach,
        writer: FeedbackWriter,
        counters: Counter[str],
        *,
        agent: AgentClient | None = None,
    ) -> None:
        self._pool = pool
        self._access = access
        self._laps = laps
        self._references = references
        self._coach = coach
        self._writer = writer
        self._counters = counters
        self._agent = agent

    async def request_feedback(
        self, principal: Principal, driver_id: uuid.UUID, session_id: uuid.UUID, telemetry: Mapping[str, Any]
    ) -> dict[str, Any]:
        """POST /api/ai/feedback: coach the lap described by `telemetry` and answer the stored feedback.

        `telemetry` is {"lap": N} (a stored lap of the session), inline `columns`/`samples`, or any other
        telemetry object (SPEC.md's): then the session's last completed lap is coached, and with none yet the
        feedback says so. An optional `reference` is {"sessionId", "lap"} or inline samples, else the driver's
        best lap on the same track and car is used. A reference on another track (another track id, or a lap
        length more than 1 % off) is refused: 422 `reference_other_track`. An AI agent is handed the telemetry
        object as sent (`telemetryData`), inline lap data excepted.
        """
        started = time.perf_counter()
        session_driver = await self._access.require_session(principal, session_id, "write", scope="ai:write")
        if session_driver != driver_id:
            raise Invalid("driverId is not the driver of this session", details=[{"field": "driverId"}])
        session = await store.coaching_session(self._pool, session_id)
        if session is None:
            raise NotFound("session not found")
        raw_reference = telemetry.get("reference")
        requested: _Requested | None = None
        if raw_reference is not None:
            requested = await self._requested_reference(principal, raw_reference)
        inline = "columns" in telemetry or "samples" in telemetry
        passed_on = None if inline else telemetry
        created_by = principal.user_id if principal.kind == "user" else None
        lap = await self._requested_lap(session_id, telemetry)
        if lap is None:
            return await self._no_lap_yet(session, telemetry, started, created_by)
        reference: Reference | None
        if requested is not None:
            refuse_other_track(
                DrivenOn(session["track_id"], session["track_name"], lap.length_m),
                DrivenOn(requested.track_id, requested.track_name, requested.reference.lap.length_m),
                field="telemetryData.reference",
            )
            reference = requested.reference
        else:
            reference = await self._references.default(session, lap)
        if reference is None:
            return await self._writer.store_silent(session, lap, "no reference lap yet", started, created_by)
        # Cues for the lap in progress only from the session's latest lap, stored, against a stored reference.
        plan_cues = (
            lap.session_id == session_id
            and reference.lap.session_id is not None
            and lap.number == await store.last_completed_lap(self._pool, session_id)
        )
        feedback = await self._coach.coach(
            session,
            lap,
            reference,
            started,
            created_by,
            live=False,
            telemetry_data=passed_on,
            plan_cues=plan_cues,
        )
        assert feedback is not None  # only live coaching stays silent
        return feedback

    async def _requested_lap(self, session_id: uuid.UUID, telemetry: Mapping[str, Any]) -> LapData | None:
        """The lap to coach: inline, the stored lap `lap` names, or for a telemetry object that names no
        stored lap the session's last completed one (None before the first)."""
        if "columns" in telemetry or "samples" in telemetry:
            return inline_lap(telemetry, "telemetryData")
        number = telemetry.get("lap")
        if number is not None:
            if (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or not 0 <= number <= MAX_LAP_NUMBER
                or number != int(number)
            ):
                raise InvalidLap(
                    "telemetryData.lap must be a lap number",
                    details=[{"field": "telemetryData.lap"}],
                )
            # {"lap": N} asks for lap N; a sample that also says which lap it is on (SPEC's telemetry object)
            # may name the lap being driven: then its last completed lap is coached.
            asked_for = not set(telemetry) - REQUEST_FIELDS
            if asked_for or await store.lap_record(self._pool, session_id, int(number)) is not None:
                return await self._laps.lap(session_id, int(number))
        last = await store.last_completed_lap(self._pool, session_id)
        return None if last is None else await self._laps.lap(session_id, last)

    async def _no_lap_yet(
        self,
        session: asyncpg.Record,
        telemetry: Mapping[str, Any],
        started: float,
        created_by: uuid.UUID | None,
    ) -> dict[str, Any]:
        """Feedback for a telemetry object before any lap is completed: the AI agent's answer to the object
        when one is configured and answers, else a stored note saying there is no lap to coach yet."""
        reason = "no lap of this session is completed yet"
        if self._agent is None:
            return await self._writer.store_silent(session, None, reason, started, created_by)
        request = {
            "version": 1,
            "driverId": str(session["driver_id"]),
            "sessionId": str(session["id"]),
            "lap": None,
            "analysis": None,
            "availableChannels": [],
            "telemetryData": dict(telemetry),
        }
        try:
            answer = await self._agent.coach(request, lambda _: NO_LAP_TELEMETRY)
        except AgentFailure as failure:
            self._counters["agent_fallbacks"] += 1
            source = f"analyst (agent failed: {failure.reason})"
            return await self._writer.store_silent(session, None, reason, started, created_by, source=source)
        items = [
            {
                "kind": "strength" if (item.time_lost or 0.0) < 0 else "improvement",
                "corner": item.corner,
                "text": item.text,
                "timeLost": round(item.time_lost or 0.0, 3),
                "confidence": round(item.confidence if item.confidence is not None else 0.5, 2),
                "evidence": {"source": "agent"},
            }
            for item in answer.items
        ]
        phrased = Phrased("agent", answer.summary or f"No lap to coach: {reason}.", items)
        return await self._writer.store_phrased(session, None, phrased, started, created_by)

    async def _requested_reference(self, principal: Principal, raw: Any) -> _Requested:
        if not isinstance(raw, Mapping):
            raise Invalid(
                "telemetryData.reference must be an object", details=[{"field": "telemetryData.reference"}]
            )
        if "columns" in raw or "samples" in raw:
            lap = inline_lap(raw, "telemetryData.reference")
            return _Requested(Reference(lap, "the reference lap"), None, None, inline=True)
        other_session, number = raw.get("sessionId"), raw.get("lap")
        try:
            other = uuid.UUID(str(other_session))
        except ValueError:
            raise Invalid(
                "telemetryData.reference.sessionId must be a session id",
                details=[{"field": "telemetryData.reference.sessionId"}],
            ) from None
        number = lap_number(number, "telemetryData.reference.lap")
        if number is None:
            raise InvalidLap(
                "telemetryData.reference.lap must be a lap number",
                details=[{"field": "telemetryData.reference.lap"}],
            )
        await self._access.require_session(principal, other, scope="telemetry:read")
        track = await store.session_track(self._pool, other)
        lap = await self._laps.lap(other, number)
        label = f"lap {number} of the reference session"
        return _Requested(
            Reference(lap, label),
            track["track_id"] if track else None,
            track["track_name"] if track else None,
            inline=False,
        )
