"""What coaching produces: corners, per-corner measurements of two laps, coaching items and the analysis.

Distances are metres from the start/finish line along the lap. A corner's segment runs from its entry (the
speed maximum before it, where braking starts) to the next corner's entry, so the segments tile the lap and
their time losses add up to the lap's delta; the segment that crosses the line has `end < start`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ItemKind = Literal["improvement", "strength"]
#: Which part of a corner an item is about: to the apex, from the apex, or the whole segment.
Phase = Literal["entry", "exit", "corner"]
#: What a cause measures (docs/ai-agent.md, "Causes"): a point on the lap (metres), a speed (km/h), a gear, how
#: far the two paths were apart (m), or, where none of those explains the time, a channel's average difference.
CauseKind = Literal[
    "brake_point", "lift", "min_speed", "throttle_point", "exit_speed", "gear", "line", "channel_difference"
]


@dataclass(frozen=True, slots=True)
class Corner:
    """One corner of a track: its name, apex (slowest point of the reference) and segment."""

    name: str
    apex: float
    start: float
    end: float

    def to_json(self) -> dict[str, Any]:
        """The corner as the API and the track store show it."""
        return {
            "name": self.name,
            "apex": round(self.apex, 1),
            "from": round(self.start, 1),
            "to": round(self.end, 1),
        }


@dataclass(frozen=True, slots=True)
class Reading:
    """One lap's value of a cause, and the lap distance (m) where it was read (None for an average)."""

    value: float
    at: float | None

    def to_json(self) -> dict[str, Any]:
        """{"value", "at"}, rounded to what a driver can feel."""
        return {"value": round(self.value, 2), "at": _round(self.at, 1)}


@dataclass(frozen=True, slots=True)
class Cause:
    """A measured reason for time lost (or gained): the lap's and the reference's reading of one quantity.

    `unit` is "m" for points on the lap (the value is then the lap distance itself) and for `line` (how far
    the lap's path was from the reference's), "km/h" for speeds, "" for gears, the channel's own unit for a
    `channel_difference` (whose readings are averages over the item's range, with `at` None).
    """

    kind: CauseKind
    unit: str
    lap: Reading
    reference: Reading
    channel: str | None = None
    along_lap: float | None = None  # for points: how far the lap's is after the reference's (m, - before)

    @property
    def difference(self) -> float:
        """The lap's value minus the reference's (for points, along the lap, through the line if need be)."""
        if self.along_lap is not None:
            return self.along_lap
        return self.lap.value - self.reference.value

    def to_json(self) -> dict[str, Any]:
        """The cause as items carry it (contract 4 in docs/ai-agent.md)."""
        return {
            "kind": self.kind,
            "channel": self.channel,
            "unit": self.unit,
            "lap": self.lap.to_json(),
            "reference": self.reference.to_json(),
            "difference": round(self.difference, 2),
        }


@dataclass(frozen=True, slots=True)
class Window:
    """Where a corner's measures are read, in metres along the lap (each may wrap through the line): braking
    and lifting from `start` to the apex, the minimum speed from `start` to `exit`, full throttle from the
    lap's own minimum to `end`, the exit speed at `exit`."""

    start: float
    apex: float
    exit: float
    end: float

    def to_json(self) -> dict[str, Any]:
        """camelCase metres."""
        return {
            "from": round(self.start, 1),
            "apex": round(self.apex, 1),
            "exit": round(self.exit, 1),
            "to": round(self.end, 1),
        }


@dataclass(frozen=True, slots=True)
class CornerMeasures:
    """How one lap went through one corner; None where the lap did not do the thing (never braked)."""

    brake_point: float | None
    lift_point: float | None
    min_speed: float
    min_speed_at: float
    full_throttle_at: float | None
    exit_speed: float
    gear: int | None

    def to_json(self) -> dict[str, Any]:
        """camelCase numbers, rounded to what a driver can feel."""
        return {
            "brakePoint": _round(self.brake_point, 1),
            "liftPoint": _round(self.lift_point, 1),
            "minSpeed": round(self.min_speed, 1),
            "minSpeedAt": round(self.min_speed_at, 1),
            "fullThrottleAt": _round(self.full_throttle_at, 1),
            "exitSpeed": round(self.exit_speed, 1),
            "gear": self.gear,
        }


@dataclass(frozen=True, slots=True)
class CornerResult:
    """A corner compared: both laps' measures and the time lost over its segment (negative: gained)."""

    corner: Corner
    number: int
    lap: CornerMeasures
    reference: CornerMeasures
    time_lost: float
    entry_lost: float
    exit_lost: float
    window: Window

    def to_json(self) -> dict[str, Any]:
        """The comparison of one corner, for the API."""
        return {
            **self.corner.to_json(),
            "number": self.number,
            "window": self.window.to_json(),
            "timeLost": round(self.time_lost, 3),
            "entryLost": round(self.entry_lost, 3),
            "exitLost": round(self.exit_lost, 3),
            "lap": self.lap.to_json(),
            "reference": self.reference.to_json(),
        }


@dataclass(frozen=True, slots=True)
class CoachingItem:
    """One thing to tell the driver: where (corner, phase, lap-distance range), how much time (the growth of
    the running delta over the range; negative for a strength), why (`cause`, the first of `causes`), the
    text, the evidence and how sure the analyst is."""

    kind: ItemKind
    corner: str
    corner_number: int
    phase: Phase
    start: float
    end: float
    text: str
    time_lost: float
    confidence: float
    causes: tuple[Cause, ...]
    evidence: dict[str, Any]

    @property
    def cause(self) -> Cause | None:
        """The main cause."""
        return self.causes[0] if self.causes else None

    def to_json(self) -> dict[str, Any]:
        """The item as stored in ai_feedback.items and published (contract 4 in docs/ai-agent.md)."""
        return {
            "kind": self.kind,
            "corner": self.corner,
            "cornerNumber": self.corner_number,
            "phase": self.phase,
            "range": {"from": round(self.start, 1), "to": round(self.end, 1)},
            "text": self.text,
            "timeLost": round(self.time_lost, 3),
            "confidence": round(self.confidence, 2),
            "cause": self.causes[0].to_json() if self.causes else None,
            "causes": [cause.to_json() for cause in self.causes],
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class Analysis:
    """A lap against its reference: ranked improvements, strengths, a summary, and every corner compared.

    `silent_reason` is set when the analyst chose to say nothing (invalid or incomplete lap, no reference).
    """

    lap_number: int | None
    reference_label: str
    lap_time: float | None
    reference_time: float | None
    delta: float | None
    noise_s: float
    summary: str
    improvements: list[CoachingItem] = field(default_factory=list)
    strengths: list[CoachingItem] = field(default_factory=list)
    corners: list[CornerResult] = field(default_factory=list)
    track_length: float | None = None
    silent_reason: str | None = None
    new_best: bool = False

    @property
    def items(self) -> list[CoachingItem]:
        """Improvements (largest loss first), then strengths."""
        return [*self.improvements, *self.strengths]

    def to_json(self) -> dict[str, Any]:
        """The whole analysis, as sent to the AI agent and kept for the API."""
        return {
            "lap": self.lap_number,
            "reference": self.reference_label,
            "lapTime": _round(self.lap_time, 3),
            "referenceTime": _round(self.reference_time, 3),
            "delta": _round(self.delta, 3),
            "noiseS": round(self.noise_s, 3),
            "trackLength": _round(self.track_length, 1),
            "newBest": self.new_best,
            "summary": self.summary,
            "silentReason": self.silent_reason,
            "items": [item.to_json() for item in self.items],
            "corners": [corner.to_json() for corner in self.corners],
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
