"""Whether a cue helped: the corner it was about, on the coached lap and on the lap it fired on, both against
the same reference lap (pure numpy, no I/O).

Both laps are compared with the reference as the analyst compares them (`compare_laps`, the same corners,
`compare_corner`), so "time lost" means the same thing before and after: the growth of the running delta over
the cue's phase of the corner (entry: segment start to apex; exit: apex to segment end; corner: the whole
segment). The cause is read the same way on both laps (a brake point is where the pedal first reaches 10 %,
…), and it is `gone` when the analyst's own rule no longer finds it on the cued lap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pitbox.coaching.analyst import CHANNELS
from pitbox.coaching.causes import causes_of_loss, line_cause
from pitbox.coaching.measures import ahead, compare_corner
from pitbox.coaching.models import Corner, CornerResult, Phase
from pitbox.telemetry.compare import LapComparison, compare_laps

FloatArray = npt.NDArray[np.float64]
Columns = Mapping[str, FloatArray]

#: A change of time smaller than this is no change (the analyst's smallest loss worth an item).
MIN_CHANGE_S = 0.05
#: Causes read as points along the lap (metres): a move is measured along the lap.
POINT_CAUSES = frozenset({"brake_point", "lift", "throttle_point"})
UNITS = {"min_speed": "km/h", "exit_speed": "km/h", "gear": "", "line": "m"}


@dataclass(frozen=True, slots=True)
class CornerReading:
    """One lap through one corner against the reference: the comparison and the corner's measures."""

    comparison: LapComparison
    result: CornerResult


def read_corner(
    lap: Columns, reference: Columns, corners: Sequence[Corner], number: int, track_length: float
) -> CornerReading:
    """Corner `number` (1 from the line) of `lap` against `reference`, with the analyst's definitions."""
    comparison = compare_laps(reference, lap, channels=CHANNELS, track_length=track_length)
    return CornerReading(comparison, compare_corner(comparison, corners, number - 1))


def as_phase(phase: str) -> Phase:
    """A stored phase name as the analyst's `Phase` (anything else is the whole corner)."""
    return "entry" if phase == "entry" else "exit" if phase == "exit" else "corner"


def phase_range(result: CornerResult, phase: str) -> tuple[float, float]:
    """The stretch of lap a phase's time is measured over (metres)."""
    corner = result.corner
    if phase == "entry":
        return corner.start, corner.apex
    if phase == "exit":
        return corner.apex, corner.end
    return corner.start, corner.end


def phase_loss(result: CornerResult, phase: str) -> float:
    """Seconds lost over a phase of the corner (negative: gained)."""
    if phase == "entry":
        return result.entry_lost
    if phase == "exit":
        return result.exit_lost
    return result.time_lost


def cause_persists(reading: CornerReading, phase: str, kind: str, difference: float) -> bool:
    """Whether the analyst's rule still finds this cause (a point on the same side of the reference's)."""
    result, length = reading.result, reading.comparison.track_length
    causes = causes_of_loss(result, as_phase(phase), length)
    if kind == "line":
        start, end = phase_range(result, phase)
        line = line_cause(reading.comparison, start, end)
        return line is not None
    for cause in causes:
        if cause.kind != kind:
            continue
        if kind in POINT_CAUSES and np.sign(cause.difference) != np.sign(difference):
            continue
        return True
    return False


def cause_values(reading: CornerReading, phase: str, kind: str) -> tuple[float | None, float | None]:
    """(lap, reference) values of a cause through the corner, as the analyst reads them."""
    lap, ref = reading.result.lap, reading.result.reference
    if kind == "brake_point":
        return lap.brake_point, ref.brake_point
    if kind == "lift":
        return lap.lift_point, ref.lift_point
    if kind == "throttle_point":
        return lap.full_throttle_at, ref.full_throttle_at
    if kind == "min_speed":
        return lap.min_speed, ref.min_speed
    if kind == "exit_speed":
        return lap.exit_speed, ref.exit_speed
    if kind == "gear":
        return (
            None if lap.gear is None else float(lap.gear),
            None if ref.gear is None else float(ref.gear),
        )
    if kind == "line":
        start, end = phase_range(reading.result, phase)
        line = line_cause(reading.comparison, start, end)
        return (0.0 if line is None else line.lap.value), 0.0
    return None, None


def measure_efficacy(
    before: CornerReading, after: CornerReading, *, phase: str, kind: str, difference: float
) -> dict[str, Any]:
    """The cue's corner before (the coached lap) and after (the lap it fired on): time lost over its phase,
    the cause on both laps and the reference's, and a verdict (`helped`, `no_change`, `worse`)."""
    lost_before, lost_after = phase_loss(before.result, phase), phase_loss(after.result, phase)
    gain = lost_before - lost_after
    start, end = phase_range(after.result, phase)
    length = after.comparison.track_length
    was, reference = cause_values(before, phase, kind)
    now, _ = cause_values(after, phase, kind)
    cause: dict[str, Any] = {
        "kind": kind,
        "unit": "m" if kind in POINT_CAUSES else UNITS.get(kind, ""),
        "before": _round(was),
        "after": _round(now),
        "reference": _round(reference),
        "moved": None,
        "gapBefore": None,
        "gapAfter": None,
        "towardReference": None,
        "gone": not cause_persists(after, phase, kind, difference),
    }
    if was is not None and now is not None and reference is not None:
        measured = (lambda a, b: ahead(a, b, length)) if kind in POINT_CAUSES else (lambda a, b: a - b)
        moved, gap_before, gap_after = measured(now, was), measured(was, reference), measured(now, reference)
        assert moved is not None and gap_before is not None and gap_after is not None
        cause.update(
            moved=_round(moved),
            gapBefore=_round(gap_before),
            gapAfter=_round(gap_after),
            towardReference=abs(gap_after) < abs(gap_before),
        )
    verdict = "helped" if gain >= MIN_CHANGE_S else "worse" if gain <= -MIN_CHANGE_S else "no_change"
    return {
        "phase": phase,
        "range": {"from": round(start, 1), "to": round(end, 1)},
        "timeLost": {"before": round(lost_before, 3), "after": round(lost_after, 3), "gain": round(gain, 3)},
        "cause": cause,
        "verdict": verdict,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)
