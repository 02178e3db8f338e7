"""The cue rules: plan a coached lap's cues (stored, spoken ahead of time), fire them from live samples (claimed
in the database, published on `ai:<driverId>`), measure after their lap whether they helped, and read them.

Planning runs in the coaching worker once a feedback is stored (before it is published), so a driver app that
reads the feedback can read its cues. Audio is made right after, in the background, each cue armed as its
audio is ready. Firing runs on the ingest path: `observe` hands the committed batch to the in-memory board
(`board.py`); the outcomes are claimed and published by a task, so ingest never waits for them. Every
instance holds the plans of the sessions it ingests: a change of a session's cues is announced on
`internal:cues` and each instance reloads them; a session seen for the first time is loaded once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson
import structlog

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.coaching.laps import LapData, StoredLaps
from pitbox.coaching.models import Analysis, Corner
from pitbox.cues import store
from pitbox.cues.board import CueBoard, LiveCue, LivePlan, Outcome
from pitbox.cues.efficacy import cause_persists, measure_efficacy, read_corner
from pitbox.cues.models import CUES_CHANNEL, Cue
from pitbox.cues.plan import PlannedCue, SpeedProfile, plan_cues
from pitbox.lifecycle import Lifecycle
from pitbox.realtime.publisher import Publisher, ai_channel
from pitbox.telemetry.compare import compare_laps
from pitbox.telemetry.models import FloatArray
from pitbox.voice.clips import VoiceClips

log = structlog.get_logger(__name__)

#: Sessions remembered as seen (their cues loaded once) and as having cues, most recently fed kept.
TRACKED_SESSIONS = 4096


class CueService(Lifecycle):
    """In-lap cues: planning, the live board, efficacy, and the session's cue list."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        access: Access,
        publisher: Publisher,
        *,
        laps: StoredLaps | None = None,
        voice: VoiceClips | None = None,
        lead_s: float = 3.0,
        max_per_lap: int = 3,
        enabled: bool = True,
    ) -> None:
        self._pool = pool
        self._access = access
        self._publisher = publisher
        self._laps = laps or StoredLaps(pool)
        self._voice = voice
        self._lead_s = lead_s
        self._max_per_lap = max_per_lap
        self._enabled = enabled
        self._board = CueBoard()
        self._instance = uuid.uuid4().hex
        self._seen: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._with_cues: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()
        self._tasks: set[asyncio.Future[None]] = set()
        self.counters: Counter[str] = Counter()
        """Since start: planned, and per outcome fired, muted, suppressed, expired, silenced; measured."""

    # -- lifecycle -----------------------------------------------------------------------------------------

    def listen(self, listen: Callable[[str, Callable[[bytes], None]], None]) -> None:
        """Hear other instances' announcements of changed cues (the hub's `listen`)."""
        listen(CUES_CHANNEL, self._on_announcement)

    async def idle(self) -> None:
        """Wait until every background step (audio, claims, reloads, efficacy) is done: tests, benchmarks."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop the background steps."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- planning (the coaching worker) --------------------------------------------------------------------

    async def plan(
        self,
        session: asyncpg.Record,
        feedback: Mapping[str, Any],
        analysis: Analysis,
        lap: LapData,
        reference: LapData,
    ) -> asyncio.Future[None] | None:
        """Store the cues a coached lap's feedback makes for the lap in progress, then make their audio; the
        answer is that audio being made (None: no cues), so longer speech can wait for it.

        Nothing for a lap or reference not stored, a session that has ended, or items with no actionable
        cause. Cues of a feedback pending approval wait with it; a cause already gone on a lap completed
        since the coached one is `silenced`.
        """
        if (
            not self._enabled
            or analysis.silent_reason is not None
            or session["status"] != "active"
            or lap.number is None
            or lap.t_end is None
            or reference.session_id is None
            or reference.number is None
            or not analysis.corners
            or analysis.track_length is None
        ):
            return None
        length = analysis.track_length
        planned = await asyncio.to_thread(self._planned, analysis, feedback["items"], lap, reference)
        if not planned:
            return None
        session_id, driver_id = uuid.UUID(str(session["id"])), uuid.UUID(str(session["driver_id"]))
        corners = [result.corner for result in analysis.corners]
        # Normally the coached lap is the session's last; after a backlog the lap in progress comes later, and
        # a cause the laps since no longer show is not said.
        for_lap, after_t, gone = lap.number + 1, lap.t_end, set[int]()
        last = await store.last_lap(self._pool, session_id)
        if last is not None and last["lap_number"] != lap.number and last["t_end"] > lap.t_end:
            for_lap, after_t = int(last["lap_number"]) + 1, float(last["t_end"])
            gone = await self._gone_by(session_id, last["lap_number"], planned, reference, corners, length)
        pending = feedback["status"] == "pending_approval"
        waiting = "pending_approval" if pending else "planned"
        origin = store.PlanOrigin(
            session_id=session_id,
            driver_id=driver_id,
            feedback_id=uuid.UUID(str(feedback["id"])),
            coached_lap=lap.number,
            for_lap=for_lap,
            after_t=after_t,
            lap_length_m=length,
            lead_s=self._lead_s,
            corners=[corner.to_json() for corner in corners],
            reference_session_id=reference.session_id,
            reference_lap=reference.number,
        )
        new = [
            store.NewCue(
                corner=cue.corner,
                corner_number=cue.corner_number,
                phase=cue.phase,
                text=cue.text,
                trigger_m=cue.trigger_m,
                anchor_m=cue.anchor_m,
                speed_kmh=cue.speed_kmh,
                expected_kmh=cue.expected_kmh,
                time_lost_s=cue.time_lost,
                cause=cue.cause,
                state="silenced" if cue.corner_number in gone else waiting,
                reason="cause_gone" if cue.corner_number in gone else None,
            )
            for cue in planned
        ]
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await store.replace_live_cues(conn, origin, new)
        self.counters["planned"] += len(rows)
        self.counters["silenced"] += len(gone)
        self._remember(self._with_cues, session_id)
        await self._changed(session_id)
        to_say = [row for row in rows if row["state"] in ("planned", "pending_approval")]
        if not to_say:
            return None
        return self._spawn(self._make_ready(session_id, driver_id, to_say, publish_plan=not pending))

    def _planned(
        self, analysis: Analysis, items: Sequence[Mapping[str, Any]], lap: LapData, reference: LapData
    ) -> list[PlannedCue]:
        assert analysis.track_length is not None
        comparison = compare_laps(
            reference.columns, lap.columns, channels=("speed",), track_length=analysis.track_length
        )
        if "speed" not in comparison.a or "speed" not in comparison.b:
            return []
        speeds = SpeedProfile(comparison.distance, comparison.b["speed"], comparison.a["speed"])
        return plan_cues(
            items,
            analysis.corners,
            speeds,
            lap_length=analysis.track_length,
            lead_s=self._lead_s,
            max_cues=self._max_per_lap,
        )

    async def _gone_by(
        self,
        session_id: uuid.UUID,
        lap_number: int,
        cues: Sequence[PlannedCue],
        reference: LapData,
        corners: list[Corner],
        length: float,
    ) -> set[int]:
        """Corner numbers of the cues whose cause lap `lap_number` no longer shows."""
        try:
            latest = await self._laps.lap(session_id, lap_number)
        except Exception as exc:
            log.info("cue_cause_check_skipped", session_id=str(session_id), lap=lap_number, error=repr(exc))
            return set()
        if not latest.valid:
            return set()

        def check() -> set[int]:
            gone = set()
            for cue in cues:
                reading = read_corner(latest.columns, reference.columns, corners, cue.corner_number, length)
                difference = float(cue.cause.get("difference") or 0.0)
                if not cause_persists(reading, cue.phase, str(cue.cause.get("kind")), difference):
                    gone.add(cue.corner_number)
            return gone

        return await asyncio.to_thread(check)

    async def _make_ready(
        self,
        session_id: uuid.UUID,
        driver_id: uuid.UUID,
        rows: Sequence[asyncpg.Record],
        *,
        publish_plan: bool,
    ) -> None:
        """Speak each cue (in the order they will be said) and arm it as soon as its audio is ready."""
        for row in rows:
            key, seconds = None, None
            if self._voice is not None:
                try:
                    spoken = await self._voice.speak(("driver", driver_id), row["text"])
                    key, seconds = spoken.key, spoken.duration_s
                except Exception as exc:
                    log.warning("cue_speech_failed", cue_id=str(row["id"]), error=repr(exc))
            await store.set_cue_audio(self._pool, row["id"], key, seconds)
            await self._changed(session_id)
        if publish_plan:
            await self._publish_plan(session_id, driver_id, [row["id"] for row in rows])

    async def _publish_plan(
        self, session_id: uuid.UUID, driver_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> None:
        """Tell the driver's app which cues are armed for the lap, with their audio, so it can fetch it early."""
        armed = [row for row in await store.cues_by_id(self._pool, list(ids)) if row["state"] == "armed"]
        if armed:
            self._publisher.publish(
                ai_channel(driver_id),
                {
                    "type": "cue_plan",
                    "sessionId": str(session_id),
                    "lap": armed[0]["for_lap"],
                    "cues": [Cue.from_row(row).wire() for row in armed],
                },
            )

    async def release(self, feedback: Mapping[str, Any]) -> None:
        """An engineer approved a feedback: its waiting cues may be said on the lap in progress (those whose
        cause a lap completed since no longer shows are silenced)."""
        feedback_id = uuid.UUID(str(feedback["id"]))
        waiting = await store.cues_of_feedback(self._pool, feedback_id, "pending_approval")
        if not waiting:
            return
        session_id, driver_id = waiting[0]["session_id"], waiting[0]["driver_id"]
        last = await store.last_lap(self._pool, session_id)
        if last is None:
            return
        first = waiting[0]
        if last["lap_number"] != first["coached_lap"] and first["reference_session_id"] is not None:
            corners = [
                Corner(name=c["name"], apex=c["apex"], start=c["from"], end=c["to"]) for c in first["corners"]
            ]
            planned = [_as_planned(row) for row in waiting]
            try:
                reference = await self._laps.lap(first["reference_session_id"], first["reference_lap"])
            except Exception as exc:
                log.info("cue_cause_check_skipped", feedback_id=str(feedback_id), error=repr(exc))
            else:
                gone = await self._gone_by(
                    session_id, last["lap_number"], planned, reference, corners, first["lap_length_m"]
                )
                for row in waiting:
                    if row["corner_number"] in gone:
                        await store.silence_cue(self._pool, row["id"], "cause_gone")
                        self.counters["silenced"] += 1
        released = await store.release_cues(
            self._pool, feedback_id, float(last["t_end"]), int(last["lap_number"]) + 1
        )
        if released:
            await self._changed(session_id)
            await self._publish_plan(session_id, driver_id, [row["id"] for row in released])

    async def set_muted(self, session_id: uuid.UUID, muted: bool) -> None:
        """Mute (or unmute) a session's cues: from now on, a muted cue's trigger passes in silence."""
        await store.set_cues_muted(self._pool, session_id, muted)
        await self._changed(session_id)

    # -- live (the ingest path) ----------------------------------------------------------------------------

    def observe(self, session_id: uuid.UUID, driver_id: uuid.UUID, columns: Mapping[str, FloatArray]) -> None:
        """A batch of the session was committed: fire (in the background) the cues whose triggers it passes.

        The hot path: a dict lookup for a session without cues; a session seen for the first time has its
        cues loaded once, in the background."""
        if not self._enabled:
            return
        if session_id in self._seen:
            self._seen.move_to_end(session_id)
        else:
            self._remember(self._seen, session_id)
            self._spawn(self._first_sight(session_id))
        outcomes = self._board.observe(session_id, columns)
        if outcomes:
            self._spawn(self._settle(session_id, outcomes))

    def on_lap_completed(self, session_id: uuid.UUID, driver_id: uuid.UUID, lap_number: int) -> None:
        """A lap completed: its cues that were never said expire, and those said get their efficacy (in the
        background; only for sessions with cues)."""
        if session_id in self._with_cues:
            self._spawn(self._after_lap(session_id, lap_number))

    async def _settle(self, session_id: uuid.UUID, outcomes: Sequence[Outcome]) -> None:
        async with self._lock(session_id):
            for outcome in outcomes:
                fired = outcome.state == "fired"
                row = await store.settle_cue(
                    self._pool,
                    outcome.cue_id,
                    outcome.state,
                    outcome.reason,
                    outcome.t,
                    outcome.m,
                    ("armed",) if fired else ("planned", "armed"),
                )
                if row is None:
                    continue  # another instance claimed it first, or it changed meanwhile
                self.counters[outcome.state] += 1
                if fired:
                    self._publisher.publish(
                        ai_channel(outcome.driver_id), {"type": "cue", "cue": Cue.from_row(row).wire()}
                    )

    async def _after_lap(self, session_id: uuid.UUID, lap_number: int) -> None:
        async with self._lock(session_id):
            expired = await store.expire_after_lap(self._pool, session_id, lap_number)
            self.counters["expired"] += len(expired)
            fired = await store.fired_in_lap(self._pool, session_id, lap_number)
        if fired:
            await self._measure(session_id, lap_number, fired)

    async def _measure(self, session_id: uuid.UUID, lap_number: int, cues: Sequence[asyncpg.Record]) -> None:
        """Efficacy of the cues fired on lap `lap_number`: their corner before (the coached lap) and now."""
        laps: dict[tuple[uuid.UUID, int], LapData] = {}

        async def lap_of(session: uuid.UUID, number: int) -> LapData:
            if (session, number) not in laps:
                laps[(session, number)] = await self._laps.lap(session, number)
            return laps[(session, number)]

        for row in cues:
            efficacy: dict[str, Any]
            try:
                cued = await lap_of(session_id, lap_number)
                if not cued.valid:
                    reasons = ", ".join(cued.invalid_reasons) or "invalid"
                    efficacy = {"verdict": "not_measured", "reason": f"lap not valid ({reasons})"}
                elif row["reference_session_id"] is None or row["reference_lap"] is None:
                    efficacy = {"verdict": "not_measured", "reason": "the reference lap is gone"}
                else:
                    coached = await lap_of(session_id, row["coached_lap"])
                    reference = await lap_of(row["reference_session_id"], row["reference_lap"])
                    efficacy = await asyncio.to_thread(_efficacy, row, coached, cued, reference)
            except Exception as exc:
                log.warning("cue_efficacy_failed", cue_id=str(row["id"]), error=repr(exc))
                efficacy = {"verdict": "not_measured", "reason": "the laps could not be compared"}
            efficacy = {"lap": lap_number, "coachedLap": row["coached_lap"], **efficacy}
            stored = await store.set_efficacy(self._pool, row["id"], efficacy)
            if stored is not None:
                self.counters["measured"] += 1
                self._publisher.publish(
                    ai_channel(row["driver_id"]), {"type": "cue_efficacy", "cue": Cue.from_row(stored).wire()}
                )

    # -- keeping the board -----------------------------------------------------------------------------------

    async def _changed(self, session_id: uuid.UUID) -> None:
        """A session's cues changed here: reload them, and tell the other instances."""
        await self._reload(session_id)
        self._publisher.publish(CUES_CHANNEL, {"sessionId": str(session_id), "from": self._instance})

    def _on_announcement(self, data: bytes) -> None:
        message = orjson.loads(data)
        if not isinstance(message, dict) or message.get("from") == self._instance:
            return
        try:
            session_id = uuid.UUID(str(message.get("sessionId")))
        except ValueError:
            return
        self._remember(self._with_cues, session_id)
        self._spawn(self._reload(session_id))

    async def _first_sight(self, session_id: uuid.UUID) -> None:
        if await store.has_cues(self._pool, session_id):
            self._remember(self._with_cues, session_id)
            await self._reload(session_id)

    async def _reload(self, session_id: uuid.UUID) -> None:
        """Hold the session's cues that may be said now (or none) on the board."""
        found = await store.live_plan(self._pool, session_id)
        if found is None or not found[1]:
            self._board.remove(session_id)
            return
        muted, rows = found
        first = rows[0]
        self._board.install(
            LivePlan(
                plan_id=first["feedback_id"],
                session_id=session_id,
                driver_id=first["driver_id"],
                after_t=float(first["after_t"]),
                lap_length=float(first["lap_length_m"]),
                cues=[
                    LiveCue(
                        row["id"],
                        float(row["trigger_m"]),
                        float(row["expected_kmh"]),
                        row["state"] == "armed",
                    )
                    for row in rows
                ],
                muted=muted,
            )
        )

    # -- reading ---------------------------------------------------------------------------------------------

    async def session_cues(self, principal: Principal, session_id: uuid.UUID, limit: int = 200) -> list[Cue]:
        """A session's cues, oldest first, with their state and (after their lap) their efficacy."""
        await self._access.require_session(principal, session_id, scope="ai:read")
        return [Cue.from_row(row) for row in await store.cues_of_session(self._pool, session_id, limit)]

    # -- helpers -----------------------------------------------------------------------------------------------

    def _spawn(self, work: Awaitable[None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(self._logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _logged(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:
            self.counters["failed"] += 1
            log.error("cue_step_failed", error=repr(exc))

    def _lock(self, session_id: uuid.UUID) -> asyncio.Lock:
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
        return lock

    @staticmethod
    def _remember(sessions: OrderedDict[uuid.UUID, None], session_id: uuid.UUID) -> None:
        sessions[session_id] = None
        sessions.move_to_end(session_id)
        while len(sessions) > TRACKED_SESSIONS:
            sessions.popitem(last=False)


def _as_planned(row: asyncpg.Record) -> PlannedCue:
    return PlannedCue(
        corner=row["corner"],
        corner_number=row["corner_number"],
        phase=row["phase"],
        text=row["text"],
        trigger_m=row["trigger_m"],
        anchor_m=row["anchor_m"],
        speed_kmh=row["speed_kmh"],
        expected_kmh=row["expected_kmh"],
        time_lost=row["time_lost_s"],
        cause=row["cause"],
    )


def _efficacy(row: asyncpg.Record, coached: LapData, cued: LapData, reference: LapData) -> dict[str, Any]:
    corners = [Corner(name=c["name"], apex=c["apex"], start=c["from"], end=c["to"]) for c in row["corners"]]
    length = float(row["lap_length_m"])
    number = int(row["corner_number"])
    before = read_corner(coached.columns, reference.columns, corners, number, length)
    after = read_corner(cued.columns, reference.columns, corners, number, length)
    cause = row["cause"]
    result = measure_efficacy(
        before,
        after,
        phase=row["phase"],
        kind=str(cause.get("kind")),
        difference=float(cause.get("difference") or 0.0),
    )
    return {
        "reference": {"sessionId": str(row["reference_session_id"]), "lap": row["reference_lap"]},
        **result,
    }
