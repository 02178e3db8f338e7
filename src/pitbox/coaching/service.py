"""The coaching rules: analyse a lap against a reference, pick who phrases it, store it, push it to the driver.

Sources, in order: the AI agent (AI_AGENT_URL), GradientAI (GRADIENT_AI_API_KEY), the built-in analyst. The
analyst always runs first (its numbers ground the others) and its text stands whenever a remote source fails;
`source` then says so, e.g. "analyst (agent failed: timeout)". Live coaching runs in background workers fed
by a bounded queue: `on_lap_completed` never waits, and laps beyond the backlog are dropped and counted.
A session with `approval_required` keeps AI feedback as `pending_approval` until an engineer approves it.
A stored feedback about the lap just driven also plans in-lap cues for the next lap (`pitbox.cues`, before it
is published), and its spoken audio waits for theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import structlog

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.coaching import store
from pitbox.coaching.agent import AgentClient, AgentFailure
from pitbox.coaching.analyst import analyse_lap
from pitbox.coaching.gradient import GradientClient, GradientFailure
from pitbox.coaching.laps import MAX_LAP_NUMBER, LapData, StoredLaps, inline_lap, lap_number
from pitbox.coaching.models import Analysis, Corner
from pitbox.coaching.schemas import Feedback, SessionCoachingState, audio_url
from pitbox.cues.service import CueService
from pitbox.errors import Conflict, Invalid, NotFound, Unavailable
from pitbox.lifecycle import Lifecycle
from pitbox.realtime.publisher import Publisher, ai_channel
from pitbox.telemetry.compare import compare_laps
from pitbox.tracks.service import DrivenOn, agreed_length, refuse_other_track, same_length
from pitbox.voice.clips import VoiceClips

log = structlog.get_logger(__name__)

MAX_PIT_WALL_CHARS = 500
AGENT_TELEMETRY_STEP_M = 10.0
#: Fields of POST /api/ai/feedback's `telemetryData` that are the request's own, not a telemetry sample's.
REQUEST_FIELDS = frozenset({"lap", "lapNumber", "lapTime", "valid", "reference"})
#: What an agent that asks for telemetry gets when there is no lap yet: nothing on no grid.
NO_LAP_TELEMETRY: dict[str, Any] = {"distance": [], "delta": [], "lap": {}, "reference": {}}


@dataclass(frozen=True, slots=True)
class _Phrased:
    source: str
    summary: str
    items: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Reference:
    """The lap a lap is coached against, how the coaching names it, and whether the lap beat it."""

    lap: LapData
    label: str
    new_best: bool = False


@dataclass(frozen=True, slots=True)
class _Requested:
    """A reference the caller named, with the track of its session (None for one sent inline)."""

    reference: _Reference
    track_id: uuid.UUID | None
    track_name: str | None
    inline: bool


@dataclass(frozen=True, slots=True)
class _LiveLap:
    session_id: uuid.UUID
    driver_id: uuid.UUID
    lap_number: int
    started: float


class CoachingService(Lifecycle):
    """Coaching for laps: on request (POST /api/ai/feedback), live after every lap (by workers that run from
    `start()` to `close()`), and pit-wall messages."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        access: Access,
        publisher: Publisher,
        *,
        voice: VoiceClips | None = None,
        agent: AgentClient | None = None,
        gradient: GradientClient | None = None,
        queue_size: int = 64,
        workers: int = 2,
        speak_feedback: bool = True,
        observe_latency: Callable[[str, float], None] | None = None,
        cues: CueService | None = None,
    ) -> None:
        self._pool = pool
        self._access = access
        self._publisher = publisher
        self._laps = StoredLaps(pool)
        self._voice = voice
        self._agent = agent
        self._gradient = gradient
        self._queue: asyncio.Queue[_LiveLap] = asyncio.Queue(maxsize=queue_size)
        self._worker_count = workers
        self._workers: list[asyncio.Task[None]] = []
        self._speech: set[asyncio.Task[None]] = set()
        self._speak_feedback = speak_feedback
        self._observe_latency = observe_latency
        self._cues = cues
        self.counters: Counter[str] = Counter()
        """Events since start: queued, dropped, coached, silent, failed, agent_fallbacks, gradient_fallbacks."""

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the live-coaching workers (once)."""
        if not self._workers:
            self._workers = [asyncio.create_task(self._work()) for _ in range(self._worker_count)]

    async def close(self) -> None:
        """Stop the workers and any speech in progress; queued laps are dropped."""
        for task in [*self._workers, *self._speech]:
            task.cancel()
        for task in [*self._workers, *self._speech]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    async def idle(self) -> None:
        """Wait until every queued lap has been coached (and its speech made): for tests and benchmarks."""
        await self._queue.join()
        while self._speech:
            await asyncio.gather(*self._speech, return_exceptions=True)

    # -- live coaching -------------------------------------------------------------------------------------

    def on_lap_completed(self, session_id: uuid.UUID, driver_id: uuid.UUID, lap_number: int) -> bool:
        """Queue a completed lap for the workers; never waits. False when the backlog is full (the lap is dropped)."""
        try:
            self._queue.put_nowait(_LiveLap(session_id, driver_id, lap_number, time.perf_counter()))
        except asyncio.QueueFull:
            self.counters["dropped"] += 1
            log.warning("coaching_backlog_full", session_id=str(session_id), lap=lap_number)
            return False
        self.counters["queued"] += 1
        return True

    @property
    def backlog(self) -> int:
        """Laps waiting for coaching."""
        return self._queue.qsize()

    async def _work(self) -> None:
        while True:
            live = await self._queue.get()
            try:
                await self.coach_stored_lap(live.session_id, live.lap_number, started=live.started)
            except Exception as exc:
                self.counters["failed"] += 1
                log.error(
                    "coaching_failed", session_id=str(live.session_id), lap=live.lap_number, error=repr(exc)
                )
            finally:
                self._queue.task_done()

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
            self.counters["silent"] += 1
            return None
        reference = await self._default_reference(session, lap)
        if reference is None:
            self.counters["silent"] += 1
            return None
        return await self._coach(session, lap, reference, started, created_by=None, live=True)

    # -- on request ----------------------------------------------------------------------------------------

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
        reference: _Reference | None
        if requested is not None:
            refuse_other_track(
                DrivenOn(session["track_id"], session["track_name"], lap.length_m),
                DrivenOn(requested.track_id, requested.track_name, requested.reference.lap.length_m),
                field="telemetryData.reference",
            )
            reference = requested.reference
        else:
            reference = await self._default_reference(session, lap)
        if reference is None:
            return await self._store_silent(session, lap, "no reference lap yet", started, created_by)
        # Cues for the lap in progress only from the session's latest lap, stored, against a stored reference.
        plan_cues = (
            lap.session_id == session_id
            and reference.lap.session_id is not None
            and lap.number == await store.last_completed_lap(self._pool, session_id)
        )
        feedback = await self._coach(
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
                raise Invalid(
                    "telemetryData.lap must be a lap number",
                    code="invalid_lap",
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
            return await self._store_silent(session, None, reason, started, created_by)
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
            self.counters["agent_fallbacks"] += 1
            source = f"analyst (agent failed: {failure.reason})"
            return await self._store_silent(session, None, reason, started, created_by, source=source)
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
        phrased = _Phrased("agent", answer.summary or f"No lap to coach: {reason}.", items)
        return await self._store_phrased(session, None, phrased, started, created_by)

    async def _requested_reference(self, principal: Principal, raw: Any) -> _Requested:
        if not isinstance(raw, Mapping):
            raise Invalid(
                "telemetryData.reference must be an object", details=[{"field": "telemetryData.reference"}]
            )
        if "columns" in raw or "samples" in raw:
            lap = inline_lap(raw, "telemetryData.reference")
            return _Requested(_Reference(lap, "the reference lap"), None, None, inline=True)
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
            raise Invalid(
                "telemetryData.reference.lap must be a lap number",
                code="invalid_lap",
                details=[{"field": "telemetryData.reference.lap"}],
            )
        await self._access.require_session(principal, other, scope="telemetry:read")
        track = await store.session_track(self._pool, other)
        lap = await self._laps.lap(other, number)
        label = f"lap {number} of the reference session"
        return _Requested(
            _Reference(lap, label),
            track["track_id"] if track else None,
            track["track_name"] if track else None,
            inline=False,
        )

    async def _default_reference(self, session: asyncpg.Record, lap: LapData) -> _Reference | None:
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
                return _Reference(reference, "your previous best lap", new_best=True)
            return _Reference(reference, "your next-best lap")
        return _Reference(reference, "your best lap")

    # -- the pipeline --------------------------------------------------------------------------------------

    async def _coach(
        self,
        session: asyncpg.Record,
        lap: LapData,
        reference: _Reference,
        started: float,
        created_by: uuid.UUID | None,
        *,
        live: bool,
        telemetry_data: Mapping[str, Any] | None = None,
        plan_cues: bool | None = None,
    ) -> dict[str, Any] | None:
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
            self.counters["silent"] += 1
            return None
        if corners is None and session["track_id"] is not None and track_length and analysis.corners:
            await store.remember_session_corners(
                self._pool, session["id"], [result.corner.to_json() for result in analysis.corners]
            )
        phrased = await self._phrase(session, analysis, lap, reference.lap, telemetry_data)
        cue_plan = (analysis, lap, reference.lap) if (live if plan_cues is None else plan_cues) else None
        return await self._store_phrased(session, lap.number, phrased, started, created_by, cue_plan=cue_plan)

    async def _store_phrased(
        self,
        session: asyncpg.Record,
        lap_number: int | None,
        phrased: _Phrased,
        started: float,
        created_by: uuid.UUID | None,
        *,
        cue_plan: tuple[Analysis, LapData, LapData] | None = None,
    ) -> dict[str, Any]:
        """Store a feedback, plan its in-lap cues (`cue_plan`: the analysis, the lap and its reference), and
        publish it (or hold it for approval)."""
        status = "pending_approval" if session["approval_required"] else "published"
        row = await store.insert_feedback(
            self._pool,
            session_id=session["id"],
            driver_id=session["driver_id"],
            lap_number=lap_number,
            kind="analysis",
            source=phrased.source,
            status=status,
            summary=phrased.summary,
            items=phrased.items,
            latency_ms=int((time.perf_counter() - started) * 1000),
            created_by=created_by,
        )
        feedback = feedback_json(row)
        self.counters["coached"] += 1
        cues_ready: asyncio.Future[None] | None = None
        if cue_plan is not None and self._cues is not None:
            try:
                cues_ready = await self._cues.plan(session, feedback, *cue_plan)
            except Exception as exc:
                log.error("cue_planning_failed", feedback_id=feedback["id"], error=repr(exc))
        if self._observe_latency is not None:
            self._observe_latency(phrased.source.split(" ")[0], time.perf_counter() - started)
        if status == "published":
            self._push(feedback, after=cues_ready)
        return feedback

    async def _store_silent(
        self,
        session: asyncpg.Record,
        lap: LapData | None,
        reason: str,
        started: float,
        created_by: uuid.UUID | None,
        *,
        source: str = "analyst",
    ) -> dict[str, Any]:
        """Store and publish a feedback without items that says why there is none (the answer to a request:
        nothing is spoken, but a driver app listening on `ai:<driverId>` shows it)."""
        summary = f"No coaching for this lap: {reason}." if lap is not None else f"No lap to coach: {reason}."
        row = await store.insert_feedback(
            self._pool,
            session_id=session["id"],
            driver_id=session["driver_id"],
            lap_number=None if lap is None else lap.number,
            kind="analysis",
            source=source,
            status="published",
            summary=summary,
            items=[],
            latency_ms=int((time.perf_counter() - started) * 1000),
            created_by=created_by,
        )
        feedback = feedback_json(row)
        self._push(feedback)
        return feedback

    async def _phrase(
        self,
        session: asyncpg.Record,
        analysis: Analysis,
        lap: LapData,
        reference: LapData,
        telemetry_data: Mapping[str, Any] | None = None,
    ) -> _Phrased:
        """The agent's words, else GradientAI's, else the analyst's; `source` names who spoke and who failed."""
        builtin = [item.to_json() for item in analysis.items]
        if analysis.silent_reason is not None or (self._agent is None and self._gradient is None):
            return _Phrased("analyst", analysis.summary, builtin)
        failures: list[str] = []
        if self._agent is not None:
            request = {
                "version": 1,
                "driverId": str(session["driver_id"]),
                "sessionId": str(session["id"]),
                "lap": lap.number,
                "analysis": analysis.to_json(),
                "availableChannels": sorted(set(lap.columns) & set(reference.columns)),
            }
            if telemetry_data is not None:  # the request's telemetry object, passed on as the original engine
                request["telemetryData"] = dict(telemetry_data)
            try:
                answer = await self._agent.coach(
                    request, lambda channels: agent_telemetry(lap, reference, channels, analysis.track_length)
                )
            except AgentFailure as failure:
                self.counters["agent_fallbacks"] += 1
                failures.append(f"agent failed: {failure.reason}")
            else:
                by_corner = {item.corner: item for item in analysis.items}
                items = []
                for agent_item in answer.items:
                    known = by_corner.get(agent_item.corner or "")
                    time_lost = (
                        agent_item.time_lost
                        if agent_item.time_lost is not None
                        else (known.time_lost if known else 0.0)
                    )
                    confidence = (
                        agent_item.confidence
                        if agent_item.confidence is not None
                        else (known.confidence if known else 0.5)
                    )
                    # The analyst's structured data for the same corner (range, cause) stays with the words.
                    items.append(
                        {
                            **(known.to_json() if known else {}),
                            "kind": "strength" if time_lost < 0 else "improvement",
                            "corner": agent_item.corner,
                            "text": agent_item.text,
                            "timeLost": round(time_lost, 3),
                            "confidence": round(confidence, 2),
                            "evidence": known.evidence if known else {"source": "agent"},
                        }
                    )
                return _Phrased("agent", answer.summary or analysis.summary, items)
        if self._gradient is not None and analysis.items:
            try:
                summary, texts = await self._gradient.rephrase(analysis)
            except GradientFailure as failure:
                self.counters["gradient_fallbacks"] += 1
                failures.append(f"gradient failed: {failure.reason}")
            else:
                items = [{**item, "text": text} for item, text in zip(builtin, texts, strict=True)]
                return _Phrased(_source("gradient", failures), summary or analysis.summary, items)
        return _Phrased(_source("analyst", failures), analysis.summary, builtin)

    def _push(self, feedback: dict[str, Any], *, after: asyncio.Future[None] | None = None) -> None:
        """Publish a feedback on the driver's ai channel and, when it has something to say, speak it (once
        the audio of its in-lap cues, `after`, is made: those are needed before the next corners)."""
        self._publisher.publish(ai_channel(feedback["driverId"]), {"type": "coaching", "feedback": feedback})
        spoken = _spoken_text(feedback)
        if self._voice is not None and self._speak_feedback and spoken:
            task = asyncio.create_task(self._speak(feedback, spoken, after))
            self._speech.add(task)
            task.add_done_callback(self._speech.discard)

    async def _speak(self, feedback: dict[str, Any], text: str, after: asyncio.Future[None] | None) -> None:
        assert self._voice is not None
        if after is not None:
            await asyncio.wait([after])  # its outcome is the cues' own business
        try:
            result = await self._voice.speak(("driver", uuid.UUID(feedback["driverId"])), text)
        except Exception as exc:
            log.warning("coaching_speech_failed", feedback_id=feedback["id"], error=repr(exc))
            return
        feedback_id = uuid.UUID(feedback["id"])
        await store.set_feedback_audio(self._pool, feedback_id, result.key)
        self._publisher.publish(
            ai_channel(feedback["driverId"]),
            {"type": "coaching_audio", "feedbackId": feedback["id"], "audioUrl": audio_url(result.key)},
        )

    # -- reading, approval, pit wall -------------------------------------------------------------------------

    async def session_feedback(
        self, principal: Principal, session_id: uuid.UUID, limit: int = 200
    ) -> list[dict[str, Any]]:
        """A session's feedback, oldest first (pending ones included, with their status)."""
        await self._access.require_session(principal, session_id, scope="ai:read")
        return [feedback_json(row) for row in await store.feedback_of_session(self._pool, session_id, limit)]

    async def approve(self, principal: Principal, feedback_id: uuid.UUID) -> dict[str, Any]:
        """A manager or engineer of a team that holds the driver releases a pending feedback: it is published now."""
        row = await store.feedback_by_id(self._pool, feedback_id)
        if row is None:
            raise NotFound("feedback not found")
        try:
            driver_id = await self._access.require_session(
                principal, row["session_id"], "write", scope="ai:write"
            )
        except NotFound:
            raise NotFound("feedback not found") from None
        await self._access.require_driver_staff(principal, driver_id)
        updated = await store.set_feedback_status(self._pool, feedback_id, "published", "pending_approval")
        if updated is None:
            raise Conflict(f"feedback is {row['status']}, not pending approval", code="not_pending")
        feedback = feedback_json(updated)
        self._push(feedback)
        if self._cues is not None:
            await self._cues.release(feedback)
        return feedback

    async def set_session_coaching(
        self,
        principal: Principal,
        session_id: uuid.UUID,
        approval_required: bool | None = None,
        cues_muted: bool | None = None,
    ) -> SessionCoachingState:
        """Switch a session's approval gate and mute its in-lap cues, each when given (its team's managers
        and engineers); answers both switches as they now are."""
        driver_id = await self._access.require_session(principal, session_id, "write", scope="ai:write")
        await self._access.require_driver_staff(principal, driver_id)
        if approval_required is not None:
            await store.set_session_approval(self._pool, session_id, approval_required)
        if cues_muted is not None:
            if self._cues is None:
                raise Unavailable("in-lap cues are not running", code="cues_unavailable")
            await self._cues.set_muted(session_id, cues_muted)
        session = await store.coaching_session(self._pool, session_id)
        if session is None:
            raise NotFound("session not found")
        return SessionCoachingState(
            session_id=session_id,
            approval_required=session["approval_required"],
            cues_muted=session["cues_muted"],
        )

    async def pit_wall(self, principal: Principal, session_id: uuid.UUID, text: str) -> dict[str, Any]:
        """A message from the pit wall: spoken to the driver, stored, and published on `ai:<driverId>`."""
        started = time.perf_counter()
        driver_id = await self._access.require_session(principal, session_id, "write", scope="ai:write")
        await self._access.require_driver_staff(principal, driver_id)
        message = " ".join(text.split())
        if not message or len(message) > MAX_PIT_WALL_CHARS:
            raise Invalid(f"text must be 1 to {MAX_PIT_WALL_CHARS} characters", details=[{"field": "text"}])
        audio_key = None
        if self._voice is not None:
            audio_key = (
                await self._voice.speak(("driver", driver_id), message, user_key=principal.rate_key)
            ).key
        row = await store.insert_feedback(
            self._pool,
            session_id=session_id,
            driver_id=driver_id,
            lap_number=None,
            kind="pit_wall",
            source="pit_wall",
            status="published",
            summary=message,
            items=[],
            latency_ms=int((time.perf_counter() - started) * 1000),
            created_by=principal.user_id,
            audio_key=audio_key,
        )
        feedback = feedback_json(row)
        self._publisher.publish(ai_channel(driver_id), {"type": "pit_wall", "feedback": feedback})
        return feedback


def feedback_json(row: asyncpg.Record) -> dict[str, Any]:
    """A stored feedback as the API and the ai channel show it (`Feedback`), as a JSON object."""
    return Feedback.from_row(row).wire()


def agent_telemetry(
    lap: LapData, reference: LapData, channels: list[str], track_length: float | None
) -> dict[str, Any]:
    """The channels an agent asked for, both laps on one distance grid (every 10 m), with the running delta."""
    wanted = [name for name in channels if name in lap.columns and name in reference.columns and name != "t"]
    step = AGENT_TELEMETRY_STEP_M if track_length and track_length > 1.0 else None
    comparison = compare_laps(
        reference.columns, lap.columns, channels=wanted, step=step, track_length=track_length
    )

    def listed(values: np.ndarray[Any, Any]) -> list[float | None]:
        return [None if not np.isfinite(value) else round(float(value), 4) for value in values]

    return {
        "distance": listed(comparison.distance),
        "delta": listed(comparison.delta),
        "lap": {name: listed(values) for name, values in comparison.b.items()},
        "reference": {name: listed(values) for name, values in comparison.a.items()},
    }


def _source(speaker: str, failures: list[str]) -> str:
    return speaker if not failures else f"{speaker} ({'; '.join(failures)})"


def _spoken_text(feedback: dict[str, Any]) -> str | None:
    """What the driver hears: the first improvement, else nothing (strengths and summaries are for screens)."""
    for item in feedback["items"]:
        if item.get("kind") == "improvement" and item.get("text"):
            return str(item["text"])
    return None


def _driven_before(row: asyncpg.Record, session: asyncpg.Record, lap: LapData) -> bool:
    """Whether the reference lap (`row`) was driven before `lap` (a lap sent inline is the latest)."""
    if lap.t_start is None:
        return True
    if row["session_id"] == session["id"]:
        return bool(row["t_start"] < lap.t_start)
    return bool(row["started_at"] < session["started_at"])


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
