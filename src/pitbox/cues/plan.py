"""A cue plan: a coached lap's improvement items as a few short cues for the next lap (pure numpy, no I/O).

Each cue is tied to one corner and one lap distance. It prepares the driver for the corner's braking point
(`anchor`): the earlier of the lap's and the reference's brake points (so a driver who braked early hears it
before braking early again, and one who braked late before the reference's point), else their lift points,
else the corner's entry. It is said `lead_s` seconds of driving before that point, at the faster of the two
laps' speeds there: `trigger = anchor - speed x lead_s`. A trigger that falls inside another corner's
braking zone (its earliest brake point to its apex) moves to just before that zone, never into it; one that
would fall before the start/finish line is dropped (the lap has begun by the time the plan is ready).

What is said is one action and one number about the item's main cause ("Turn 3: brake 20 metres later");
causes that name no action (a channel difference) make no cue. At most one cue per corner (its largest
loss), at most `max_cues` per lap (largest losses first), and no two so close that the second would start
before the first is spoken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pitbox.coaching.models import CornerResult

FloatArray = npt.NDArray[np.float64]

#: Causes a cue can turn into an action.
ACTIONABLE_CAUSES = frozenset(
    {"brake_point", "lift", "min_speed", "throttle_point", "exit_speed", "gear", "line"}
)
#: Distances are said to the nearest 5 m: what a driver can act on (and fewer distinct clips to synthesise).
ROUND_TO_M = 5
#: Seconds of driving kept between two cues' triggers, so one is spoken before the next starts.
MIN_GAP_S = 2.5
#: How far before another corner's braking zone a trigger that fell inside it is moved (metres).
ZONE_MARGIN_M = 10.0
MAX_CORNER_NAME = 40


@dataclass(frozen=True, slots=True)
class SpeedProfile:
    """Both laps' speeds (km/h) on one lap-distance grid (metres), as the lap comparison gives them."""

    distance: FloatArray
    lap: FloatArray
    reference: FloatArray

    def at(self, metres: float) -> tuple[float, float]:
        """(lap, reference) speed at a lap distance."""
        lap = float(np.interp(metres, self.distance, np.nan_to_num(self.lap)))
        reference = float(np.interp(metres, self.distance, np.nan_to_num(self.reference)))
        return lap, reference


@dataclass(frozen=True, slots=True)
class PlannedCue:
    """One cue of a plan: where it is said (`trigger_m`), what it prepares for (`anchor_m`), at what speed
    the lead distance was reckoned, what speed the car is expected to carry at the trigger, and what it says."""

    corner: str
    corner_number: int
    phase: str
    text: str
    trigger_m: float
    anchor_m: float
    speed_kmh: float
    expected_kmh: float
    time_lost: float
    cause: dict[str, Any]


def plan_cues(
    items: Sequence[Mapping[str, Any]],
    corners: Sequence[CornerResult],
    speeds: SpeedProfile,
    *,
    lap_length: float,
    lead_s: float,
    max_cues: int,
) -> list[PlannedCue]:
    """The cues for the next lap from a feedback's items (contract 4 of docs/ai-agent.md) and the analysis'
    corners, in the order they will be said."""
    by_number = {result.number: result for result in corners}
    improvements = [item for item in items if item.get("kind") == "improvement"]
    improvements.sort(key=lambda item: -float(item.get("timeLost") or 0.0))
    chosen: list[PlannedCue] = []
    for item in improvements:
        if len(chosen) >= max_cues:
            break
        number, cause = item.get("cornerNumber"), item.get("cause")
        if not isinstance(number, int) or number not in by_number or not isinstance(cause, Mapping):
            continue
        if any(cue.corner_number == number for cue in chosen):
            continue
        name = str(item.get("corner") or f"Turn {number}")[:MAX_CORNER_NAME]
        text = cue_text(name, cause)
        if text is None:
            continue
        result = by_number[number]
        anchor = anchor_point(result, lap_length)
        speed = max(speeds.at(anchor))
        trigger = _clear_of_braking_zones(anchor - speed / 3.6 * lead_s, result, corners, lap_length)
        if trigger < 0:
            continue
        if any(abs(trigger - other.trigger_m) < MIN_GAP_S * speed / 3.6 for other in chosen):
            continue
        chosen.append(
            PlannedCue(
                corner=name,
                corner_number=number,
                phase=str(item.get("phase") or "corner"),
                text=text,
                trigger_m=round(trigger, 1),
                anchor_m=round(anchor, 1),
                speed_kmh=round(speed, 1),
                expected_kmh=round(min(speeds.at(trigger)), 1),
                time_lost=float(item.get("timeLost") or 0.0),
                cause=dict(cause),
            )
        )
    return sorted(chosen, key=lambda cue: cue.trigger_m)


def anchor_point(result: CornerResult, lap_length: float) -> float:
    """The point a cue for this corner prepares for: the earlier of both laps' brake points, else of their
    lift points, else the corner's entry."""
    for points in (
        (result.lap.brake_point, result.reference.brake_point),
        (result.lap.lift_point, result.reference.lift_point),
    ):
        found = [point for point in points if point is not None]
        if found:
            return max(found, key=lambda point: _before(point, result.corner.apex, lap_length))
    return result.corner.start


def braking_zone(result: CornerResult, lap_length: float) -> tuple[float, float] | None:
    """From the earlier of both laps' brake points to the apex; None when neither lap braked."""
    points = [point for point in (result.lap.brake_point, result.reference.brake_point) if point is not None]
    if not points:
        return None
    start = max(points, key=lambda point: _before(point, result.corner.apex, lap_length))
    return start, result.corner.apex


def _before(point: float, apex: float, lap_length: float) -> float:
    """How far `point` lies before `apex`, going round the lap."""
    return (apex - point) % lap_length


def _clear_of_braking_zones(
    trigger: float, result: CornerResult, corners: Sequence[CornerResult], lap_length: float
) -> float:
    """`trigger`, or just before the braking zone of another corner it falls in (negative: no place)."""
    for _ in range(len(corners)):
        if trigger < 0:
            return trigger
        for other in corners:
            zone = None if other.number == result.number else braking_zone(other, lap_length)
            if zone is None:
                continue
            start, end = zone
            if (trigger - start) % lap_length <= (end - start) % lap_length:
                # A zone across the line holds the trigger only from the lap's start: no place before it.
                trigger = start - ZONE_MARGIN_M if start <= trigger else -1.0
                break
        else:
            return trigger
    return trigger


def cue_text(corner: str, cause: Mapping[str, Any]) -> str | None:
    """Corner, one action, one number; None for a cause that names no action."""
    kind = cause.get("kind")
    if kind not in ACTIONABLE_CAUSES:
        return None
    try:
        difference = float(cause.get("difference") or 0.0)
        lap = float(cause["lap"]["value"])
        reference = float(cause["reference"]["value"])
    except (KeyError, TypeError, ValueError):
        return None
    if kind in ("brake_point", "lift"):
        verb = "brake" if kind == "brake_point" else "lift"
        direction = "later" if difference < 0 else "earlier"
        return f"{corner}: {verb} {_metres(difference)} metres {direction}"
    if kind == "throttle_point":
        return f"{corner}: throttle {_metres(difference)} metres sooner" if difference > 0 else None
    if kind == "min_speed":
        gap = round(reference - lap)
        return f"{corner}: carry {gap} kph more" if gap > 0 else None
    if kind == "exit_speed":
        gap = round(reference - lap)
        return f"{corner}: exit {gap} kph faster" if gap > 0 else None
    if kind == "gear":
        return f"{corner}: gear {int(reference)}"
    return f"{corner}: line {round(lap)} metres off" if round(lap) > 0 else None


def _metres(difference: float) -> int:
    return max(ROUND_TO_M, int(round(abs(difference) / ROUND_TO_M)) * ROUND_TO_M)
