"""The live side of cues: each session's plan in memory, and every ingested batch checked against it.

This runs on the ingest hot path, after a batch is committed: a session without a plan costs one dict lookup,
one with a plan a few numpy operations over the batch's lap distance (docs/benchmarks.md, In-lap cues). The
board decides, it does not store: each trigger the car passes becomes an `Outcome` that the cue service
claims in the database (so a cue fires once, whichever instance saw it first) and publishes.

A plan belongs to one lap: the lap driven from `after_t` (the coached lap's end) to the next line crossing,
which the board sees itself as the lap distance wrapping. A cue fires on the first sample at or past its
trigger, coming from before it, unless the driver is off pace for another reason by then:

* the car has been in the pit lane this lap (`inPit`): `in_pit`;
* the lap is no longer valid as lap detection judges it (a gap of more than 1 s, a jump or reset): `invalid_lap`;
* the flag the source shows at that sample (`flag`, carried over samples that lack it) is yellow, red or
  chequered: `yellow_flag`, `red_flag`, `chequered_flag`;
* the car is far slower there than the plan expects (less than `OFF_PACE` of the slower lap's speed at the
  trigger: a spin, a slow zone): `off_pace`;

or the pit wall muted the session (`muted`), or the cue's audio is not ready yet (`audio_late`). A trigger
already behind the car when the board first sees the plan's lap was `passed_before_armed`; one the lap ended
without reaching, `not_reached`.
"""

from __future__ import annotations

import math
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Flags (docs/telemetry.md, `flag`) under which no cue is said, and the reason recorded.
FLAG_SILENCES = {3: "yellow_flag", 4: "red_flag", 6: "chequered_flag"}
#: As lap detection: a longer gap between samples makes the lap invalid (seconds).
MAX_GAP_S = 1.0
#: No car moves along the lap faster than this (m/s), plus what rounding of the lap distance may add (m).
MAX_SPEED_MS = 150.0
JUMP_SLACK_M = 10.0
#: A car slower than this share of the expected speed at the trigger is off pace.
OFF_PACE = 0.7
#: After the line a source may show the old lap's distance for a moment (a logger's late beacon): samples
#: near the lap's end within this long after `after_t` are not yet the plan's lap.
LINE_LAG_S = 5.0
#: Decided cues remembered (against reloads that raced their claim).
SETTLED_KEPT = 10_000


@dataclass(slots=True)
class LiveCue:
    """One cue as the board needs it: where it fires, the speed expected there, whether its audio is ready."""

    id: uuid.UUID
    trigger_m: float
    expected_kmh: float
    armed: bool


@dataclass(slots=True)
class LivePlan:
    """A session's cues for one lap, and what that lap has shown so far."""

    plan_id: uuid.UUID  # the feedback the cues came from
    session_id: uuid.UUID
    driver_id: uuid.UUID
    after_t: float
    lap_length: float
    cues: list[LiveCue]
    muted: bool = False
    started: bool = False
    last_t: float | None = None
    last_m: float | None = None
    flag: float = math.nan
    in_pit: bool = False
    invalid: bool = False
    decided: set[uuid.UUID] = field(default_factory=set)

    def keep_progress_of(self, earlier: LivePlan) -> None:
        """Carry what the lap has shown from the same plan loaded before (a reload after a state change)."""
        self.started, self.last_t, self.last_m = earlier.started, earlier.last_t, earlier.last_m
        self.flag, self.in_pit, self.invalid = earlier.flag, earlier.in_pit, earlier.invalid
        self.decided |= earlier.decided


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a cue: `fired` at sample time `t` and lap distance `m`, or why not."""

    cue_id: uuid.UUID
    session_id: uuid.UUID
    driver_id: uuid.UUID
    state: str  # fired | muted | suppressed | expired
    reason: str | None
    t: float | None = None
    m: float | None = None


class CueBoard:
    """The plans of the sessions this instance sees, by session id."""

    def __init__(self) -> None:
        self._plans: dict[uuid.UUID, LivePlan] = {}
        # Cues decided here lately: a reload read before their claim was stored must not bring them back.
        self._settled: OrderedDict[uuid.UUID, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._plans)

    def install(self, plan: LivePlan) -> None:
        """Hold `plan` for its session (the same plan reloaded keeps what its lap has shown)."""
        current = self._plans.get(plan.session_id)
        if current is not None and current.plan_id == plan.plan_id:
            plan.keep_progress_of(current)
        plan.cues = [cue for cue in plan.cues if cue.id not in self._settled]
        if plan.cues:
            self._plans[plan.session_id] = plan
        else:
            self._plans.pop(plan.session_id, None)

    def remove(self, session_id: uuid.UUID) -> None:
        """Forget the session's plan."""
        self._plans.pop(session_id, None)

    def plan(self, session_id: uuid.UUID) -> LivePlan | None:
        """The session's plan, if any."""
        return self._plans.get(session_id)

    def observe(self, session_id: uuid.UUID, columns: Mapping[str, FloatArray]) -> list[Outcome]:
        """Check a committed batch (its columns, `t` increasing) against the session's plan."""
        plan = self._plans.get(session_id)
        if plan is None:
            return []
        outcomes = _check(plan, columns)
        for outcome in outcomes:
            self._settled[outcome.cue_id] = None
        while len(self._settled) > SETTLED_KEPT:
            self._settled.popitem(last=False)
        if all(cue.id in plan.decided for cue in plan.cues):  # nothing left to say on this lap
            self._plans.pop(session_id, None)
        return outcomes


def _check(plan: LivePlan, columns: Mapping[str, FloatArray]) -> list[Outcome]:
    t = columns.get("t")
    pct, dist = columns.get("lapDistPct"), columns.get("lapDist")
    if t is None or (pct is None and dist is None):
        return []
    metres = pct * plan.lap_length if pct is not None else dist
    assert metres is not None
    chosen = np.flatnonzero(np.isfinite(metres) & (t > plan.after_t))
    if chosen.size == 0:
        return []
    t, metres = t[chosen], metres[chosen]
    flag = _carried(_column(columns, "flag", chosen), plan.flag)
    pit = np.nan_to_num(_column(columns, "inPit", chosen), nan=0.0) >= 0.5
    speed = _column(columns, "speed", chosen)
    if not plan.started:
        waiting = (metres > plan.lap_length / 2) & (t - plan.after_t < LINE_LAG_S)
        begun = np.flatnonzero(~waiting)
        if begun.size == 0:
            return []
        first = int(begun[0])
        t, metres, flag, pit, speed = t[first:], metres[first:], flag[first:], pit[first:], speed[first:]
        plan.started = True
    outcomes: list[Outcome] = []
    if plan.last_t is None:
        # The first look at the plan's lap: a trigger already behind the car was passed before the plan was here.
        for cue in plan.cues:
            if cue.id not in plan.decided and metres[0] >= cue.trigger_m:
                outcomes.append(_decided(plan, cue, "expired", "passed_before_armed"))
    else:
        assert plan.last_m is not None
        t = np.concatenate(([plan.last_t], t))
        metres = np.concatenate(([plan.last_m], metres))
        flag = np.concatenate(([plan.flag], flag))
        pit = np.concatenate(([False], pit))
        speed = np.concatenate(([math.nan], speed))
    steps, gaps = np.diff(metres), np.diff(t)
    wraps = np.flatnonzero(steps < -plan.lap_length / 2)
    stop = int(wraps[0]) if wraps.size else steps.size  # pairs of samples in the plan's lap
    jumps = (gaps > MAX_GAP_S) | (steps < -JUMP_SLACK_M) | (steps > MAX_SPEED_MS * gaps + JUMP_SLACK_M)
    jumped = np.flatnonzero(jumps[:stop])
    invalid_from = 0 if plan.invalid else (int(jumped[0]) if jumped.size else None)
    pitted = np.flatnonzero(pit[: stop + 1])
    pit_from = 0 if plan.in_pit else (int(pitted[0]) if pitted.size else None)
    before, after = metres[:stop], metres[1 : stop + 1]
    for cue in plan.cues:
        if cue.id in plan.decided:
            continue
        crossed = np.flatnonzero((before < cue.trigger_m) & (after >= cue.trigger_m))
        if crossed.size == 0:
            continue
        pair = int(crossed[0])
        at = pair + 1
        state, reason = "fired", None
        if not cue.armed:
            state, reason = "expired", "audio_late"
        elif plan.muted:
            state, reason = "muted", "muted"
        elif pit_from is not None and at >= pit_from:
            state, reason = "suppressed", "in_pit"
        elif invalid_from is not None and pair >= invalid_from:
            state, reason = "suppressed", "invalid_lap"
        elif np.isfinite(flag[at]) and int(flag[at]) in FLAG_SILENCES:
            state, reason = "suppressed", FLAG_SILENCES[int(flag[at])]
        elif np.isfinite(speed[at]) and speed[at] < OFF_PACE * cue.expected_kmh:
            state, reason = "suppressed", "off_pace"
        outcomes.append(_decided(plan, cue, state, reason, float(t[at]), float(metres[at])))
    if wraps.size:  # the line: the plan's lap is over
        for cue in plan.cues:
            if cue.id not in plan.decided:
                outcomes.append(_decided(plan, cue, "expired", "not_reached"))
        plan.last_t = None
        plan.cues = []
        return outcomes
    plan.last_t, plan.last_m, plan.flag = float(t[-1]), float(metres[-1]), float(flag[-1])
    plan.in_pit = plan.in_pit or bool(pit.any())
    plan.invalid = plan.invalid or bool(jumps.any())
    return outcomes


def _decided(
    plan: LivePlan,
    cue: LiveCue,
    state: str,
    reason: str | None,
    t: float | None = None,
    m: float | None = None,
) -> Outcome:
    plan.decided.add(cue.id)
    return Outcome(cue.id, plan.session_id, plan.driver_id, state, reason, t, m)


def _column(columns: Mapping[str, FloatArray], name: str, chosen: npt.NDArray[np.intp]) -> FloatArray:
    values = columns.get(name)
    return np.full(chosen.size, math.nan) if values is None else np.asarray(values, dtype=np.float64)[chosen]


def _carried(values: FloatArray, previous: float) -> FloatArray:
    """`values` with each NaN replaced by the last value before it (`previous` before the first)."""
    held = np.concatenate(([previous], values))
    known = np.where(np.isfinite(held), np.arange(held.size), 0)
    return held[np.maximum.accumulate(known)][1:]
