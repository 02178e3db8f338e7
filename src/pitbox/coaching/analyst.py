"""The built-in lap analyst: a lap against a reference lap, corner by corner, in plain numpy (no I/O).

Both laps are aligned on lap distance (`compare_laps`), the corners come from the reference's speed minima
(or the track's stored corners), and each corner's time loss is the growth of the running delta over its
segment, so the losses add up to the lap's delta. Coaching is written only where a loss stands clear of the
delta's noise, and every item names the numbers it rests on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pitbox.coaching.corners import find_corners
from pitbox.coaching.models import Analysis, CoachingItem, Corner, CornerMeasures, CornerResult
from pitbox.errors import Invalid
from pitbox.telemetry.compare import LapComparison, compare_laps

FloatArray = npt.NDArray[np.float64]
Columns = Mapping[str, FloatArray]

CHANNELS = ("speed", "throttle", "brake", "gear", "steering")
#: Pedal positions (0..1) that count as "on the brake", "off the throttle" and "full throttle".
BRAKE_ON = 0.1
THROTTLE_OFF = 0.5
FULL_THROTTLE = 0.9
#: Differences below these are within what a driver repeats lap to lap: not worth a word.
POINT_SLACK_M = 5.0
SPEED_SLACK_KMH = 2.0
THROTTLE_SLACK_M = 10.0


@dataclass(frozen=True, slots=True)
class AnalystLimits:
    """When the analyst speaks: the smallest loss worth an item, and how many items at most."""

    min_loss_s: float = 0.05
    noise_factor: float = 2.0
    max_improvements: int = 3
    max_strengths: int = 2
    min_coverage: float = 0.95
    max_gap_s: float = 1.0


def analyse_lap(
    lap: Columns,
    reference: Columns,
    *,
    lap_number: int | None = None,
    lap_valid: bool = True,
    invalid_reasons: Sequence[str] = (),
    reference_label: str = "your best lap",
    lap_time: float | None = None,
    reference_time: float | None = None,
    track_length: float | None = None,
    corners: Sequence[Corner] | None = None,
    limits: AnalystLimits | None = None,
) -> Analysis:
    """Compare `lap` with `reference` (each line to line, as `lap_samples` cuts them) and coach the driver.

    Lap times (from lap detection) only feed the summary; the delta comes from the distance alignment.

    Says nothing (items empty, `silent_reason` set) for an invalid or incomplete lap.
    """
    limits = limits or AnalystLimits()
    if not lap_valid:
        reasons = ", ".join(invalid_reasons) or "invalid"
        return _silent(lap_number, reference_label, f"lap not valid ({reasons})")
    for name, columns in (("lap", lap), ("reference", reference)):
        problem = _incompleteness(columns, track_length, limits)
        if problem:
            return _silent(lap_number, reference_label, f"{name} {problem}")
    try:
        comparison = compare_laps(reference, lap, channels=CHANNELS, track_length=track_length)
    except Invalid as exc:
        return _silent(lap_number, reference_label, exc.message)
    if "speed" not in comparison.a or "speed" not in comparison.b:
        return _silent(lap_number, reference_label, "no speed channel")
    delta = float(comparison.delta[-1])
    noise = _delta_noise(comparison)
    found = (
        list(corners)
        if corners
        else find_corners(comparison.distance, comparison.a["speed"], comparison.a.get("steering"))
    )
    measured = [_compare_corner(comparison, found, index) for index in range(len(found))]
    threshold = max(limits.min_loss_s, limits.noise_factor * noise)
    units = _Units(comparison.track_length)
    improvements = sorted(
        (
            _improvement(result, reference_label, noise, units)
            for result in measured
            if result.time_lost >= threshold
        ),
        key=lambda item: -item.time_lost,
    )[: limits.max_improvements]
    strengths = sorted(
        (
            _strength(result, reference_label, noise, units)
            for result in measured
            if -result.time_lost >= threshold
        ),
        key=lambda item: item.time_lost,
    )[: limits.max_strengths]
    return Analysis(
        lap_number=lap_number,
        reference_label=reference_label,
        lap_time=lap_time,
        reference_time=reference_time,
        delta=delta,
        noise_s=noise,
        summary=_summary(
            lap_number, lap_time, delta, reference_label, reference_time, improvements, strengths
        ),
        improvements=improvements,
        strengths=strengths,
        corners=measured,
        track_length=comparison.track_length,
    )


def _silent(lap_number: int | None, reference_label: str, reason: str) -> Analysis:
    return Analysis(
        lap_number=lap_number,
        reference_label=reference_label,
        lap_time=None,
        reference_time=None,
        delta=None,
        noise_s=0.0,
        summary=f"No coaching for this lap: {reason}.",
        silent_reason=reason,
    )


def _incompleteness(columns: Columns, track_length: float | None, limits: AnalystLimits) -> str | None:
    """Why a lap's samples cannot be trusted line to line (None when they can)."""
    if "t" not in columns or "speed" not in columns:
        return "lacks the t or speed channel"
    t = np.asarray(columns["t"], dtype=np.float64)
    if "lapDistPct" in columns:
        position = np.asarray(columns["lapDistPct"], dtype=np.float64)
    elif "lapDist" in columns:
        dist = np.asarray(columns["lapDist"], dtype=np.float64)
        length = track_length or float(np.nanmax(dist)) if np.isfinite(dist).any() else 0.0
        position = dist / length if length > 0 else np.full(dist.shape, np.nan)
    else:
        return "has no lap position (lapDistPct or lapDist)"
    present = np.isfinite(position) & np.isfinite(t)
    if present.sum() < 20:
        return "has too few samples"
    bins = np.unique(np.clip((position[present] % 1.0) * 50, 0, 49).astype(int))
    if bins.size < limits.min_coverage * 50:
        return "is incomplete"
    if float(np.diff(t[present]).max()) > limits.max_gap_s:
        return "has a gap in its samples"
    return None


def _delta_noise(comparison: LapComparison) -> float:
    """Robust size of the delta's sample-to-sample wobble over ~40 m: what alignment alone can produce."""
    delta = comparison.delta
    step = float(comparison.distance[1] - comparison.distance[0])
    window = max(int(round(40.0 * (1.0 if comparison.track_length > 1.0 else 0.001) / step)), 3) | 1
    half = window // 2
    padded = np.concatenate((np.full(half, delta[0]), delta, np.full(half, delta[-1])))
    trend = np.convolve(padded, np.full(window, 1.0 / window), mode="valid")
    wobble = delta - trend
    spread = 1.4826 * float(np.median(np.abs(wobble - np.median(wobble))))
    return max(0.01, 3.0 * spread)


class _Loop:
    """Grid positions of a lap treated as a loop: circular ranges in metres to grid indices."""

    def __init__(self, comparison: LapComparison) -> None:
        self.length = comparison.track_length
        self.step = float(comparison.distance[1] - comparison.distance[0])
        self.n = comparison.distance.size - 1  # the last grid point is the line again

    def span(self, start: float, end: float) -> float:
        """Distance from `start` forward to `end`, going round the loop."""
        return (end - start) % self.length

    def indices(self, start: float, end: float) -> npt.NDArray[np.intp]:
        """Grid indices from `start` forward to `end` (both included)."""
        first = int(round(start / self.step)) % self.n
        count = int(round(self.span(start, end) / self.step))
        return (first + np.arange(count + 1)) % self.n

    def at(self, index: int) -> float:
        """Metres from the line of a grid index."""
        return float(index % self.n) * self.step


def _delta_growth(comparison: LapComparison, start: float, end: float) -> float:
    """How much the running delta grows from `start` to `end` (metres), through the line if end < start."""
    distance, delta = comparison.distance, comparison.delta
    at_start = float(np.interp(start, distance, delta))
    at_end = float(np.interp(end, distance, delta))
    if end >= start:
        return at_end - at_start
    return (float(delta[-1]) - at_start) + (at_end - float(delta[0]))


def _compare_corner(comparison: LapComparison, corners: Sequence[Corner], index: int) -> CornerResult:
    corner = corners[index]
    loop = _Loop(comparison)
    previous_apex = corners[index - 1].apex if len(corners) > 1 else corner.apex - loop.length / 2
    lead = min(150.0 * _metre(comparison), 0.5 * loop.span(previous_apex, corner.start))
    window_start = (corner.start - lead) % loop.length
    exit_point = (
        corner.apex + min(150.0 * _metre(comparison), 0.5 * loop.span(corner.apex, corner.end))
    ) % loop.length
    entry = loop.indices(window_start, corner.apex)
    whole = loop.indices(window_start, exit_point)
    to_end = loop.indices(window_start, corner.end)
    exit_index = int(round(exit_point / loop.step)) % loop.n
    measures = [
        _measure(side, loop, entry, whole, to_end, exit_index) for side in (comparison.b, comparison.a)
    ]
    return CornerResult(
        corner=corner,
        lap=measures[0],
        reference=measures[1],
        time_lost=_delta_growth(comparison, corner.start, corner.end),
        entry_lost=_delta_growth(comparison, corner.start, corner.apex),
        exit_lost=_delta_growth(comparison, corner.apex, corner.end),
    )


def _metre(comparison: LapComparison) -> float:
    """One metre in grid units (the grid is a fraction of the lap when the track length is unknown)."""
    return 1.0 if comparison.track_length > 1.0 else 0.001


def _measure(
    side: dict[str, FloatArray],
    loop: _Loop,
    entry: npt.NDArray[np.intp],
    whole: npt.NDArray[np.intp],
    to_end: npt.NDArray[np.intp],
    exit_index: int,
) -> CornerMeasures:
    speed = side["speed"]
    slowest = int(whole[int(np.nanargmin(speed[whole]))])
    brake_point = _first_crossing(side.get("brake"), entry, lambda v: v >= BRAKE_ON)
    lift_point = _first_crossing(side.get("throttle"), entry, lambda v: v < THROTTLE_OFF)
    full_throttle = None
    throttle = side.get("throttle")
    if throttle is not None and lift_point is not None:
        # The lift can fall before the stretch to the corner's end (a long entry); then all of it is after.
        at_lift = np.flatnonzero(to_end == lift_point)
        after_lift = to_end[int(at_lift[0]) :] if at_lift.size else to_end
        top = max(float(np.nanmax(throttle)), 0.5)
        full_throttle = _first_crossing(
            throttle, after_lift, lambda v: v >= FULL_THROTTLE * top, require_off=False
        )
    gear = side.get("gear")
    gear_at_apex = None if gear is None or not np.isfinite(gear[slowest]) else int(gear[slowest])
    return CornerMeasures(
        brake_point=None if brake_point is None else loop.at(brake_point),
        lift_point=None if lift_point is None else loop.at(lift_point),
        min_speed=float(speed[slowest]),
        min_speed_at=loop.at(slowest),
        full_throttle_at=None if full_throttle is None else loop.at(full_throttle),
        exit_speed=float(speed[exit_index]),
        gear=gear_at_apex,
    )


def _first_crossing(
    values: FloatArray | None,
    indices: npt.NDArray[np.intp],
    condition: object,
    *,
    require_off: bool = True,
) -> int | None:
    """First index in `indices` where `condition` becomes true (after being false, when `require_off`)."""
    if values is None or indices.size == 0:
        return None
    assert callable(condition)
    hits = np.asarray(condition(np.nan_to_num(values[indices], nan=0.0)), dtype=bool)
    if not hits.any():
        return None
    if require_off:
        starts = np.flatnonzero(hits[1:] & ~hits[:-1]) + 1
        if starts.size:
            return int(indices[starts[0]])
        return int(indices[0]) if hits[0] else None
    return int(indices[int(np.argmax(hits))])


class _Units:
    """Formats distances: metres when the track length is known, else percent of the lap."""

    def __init__(self, track_length: float) -> None:
        self.length = track_length
        self.metres = track_length > 1.0

    def gap(self, value: float) -> str:
        """A distance between two points."""
        return f"{abs(value):.0f} m" if self.metres else f"{abs(value) * 100:.1f} % of a lap"


def _ahead(a: float | None, b: float | None, length: float) -> float | None:
    """How far `a` is after `b` along the lap (negative: before), for two points of the same corner."""
    if a is None or b is None:
        return None
    difference = (a - b) % length
    return difference - length if difference > length / 2 else difference


def _improvement(result: CornerResult, reference: str, noise: float, units: _Units) -> CoachingItem:
    lap, ref = result.lap, result.reference
    loop_length = units.length
    lost = result.time_lost
    findings: list[str] = []
    advice = ""
    entry_heavy = result.entry_lost >= 0.5 * lost
    brake_shift = _ahead(lap.brake_point, ref.brake_point, loop_length)
    point_name = "braked"
    if brake_shift is None:
        brake_shift = _ahead(lap.lift_point, ref.lift_point, loop_length)
        point_name = "lifted"
    slower_apex = ref.min_speed - lap.min_speed
    throttle_late = _ahead(lap.full_throttle_at, ref.full_throttle_at, loop_length)
    slower_exit = ref.exit_speed - lap.exit_speed
    slack = POINT_SLACK_M if units.metres else POINT_SLACK_M / 1000
    throttle_slack = THROTTLE_SLACK_M if units.metres else THROTTLE_SLACK_M / 1000
    if entry_heavy and brake_shift is not None and brake_shift < -slack:
        findings.append(f"you {point_name} {units.gap(brake_shift)} earlier than {reference}")
        verb = "brake" if point_name == "braked" else "lift"
        advice = f"trust the car: {verb} {units.gap(brake_shift)} later, where {reference} did"
    elif entry_heavy and brake_shift is not None and brake_shift > slack and slower_apex > SPEED_SLACK_KMH:
        findings.append(
            f"you {point_name} {units.gap(brake_shift)} later but were {slower_apex:.0f} km/h slower at the apex"
            f" ({lap.min_speed:.0f} vs {ref.min_speed:.0f} km/h)"
        )
        advice = (
            "you are overdriving the entry: brake where your reference did and roll more speed to the apex"
        )
    elif entry_heavy and slower_apex > SPEED_SLACK_KMH:
        findings.append(
            f"you carried {slower_apex:.0f} km/h less through the apex ({lap.min_speed:.0f} vs {ref.min_speed:.0f} km/h)"
        )
        advice = "release the brake earlier and carry more speed in"
    if not entry_heavy or not findings:
        if throttle_late is not None and throttle_late > throttle_slack:
            findings.append(
                f"you were back to full throttle {units.gap(throttle_late)} later than {reference}"
            )
            advice = advice or "get the car turned earlier and squeeze the throttle sooner"
        if slower_exit > SPEED_SLACK_KMH:
            findings.append(
                f"exit speed was {slower_exit:.0f} km/h lower ({lap.exit_speed:.0f} vs {ref.exit_speed:.0f} km/h)"
            )
            advice = advice or "a straighter exit: open the steering and get on the power earlier"
    if lap.gear is not None and ref.gear is not None and lap.gear != ref.gear:
        findings.append(f"you took it in gear {lap.gear} where {reference} used {ref.gear}")
    corroborated = bool(findings)
    if not findings:
        findings.append(
            f"you lost time between {units.gap(result.corner.start)} and {units.gap(result.corner.end)}"
        )
    text = f"{result.corner.name}: {' and '.join(findings[:2])}, and lost {lost:.2f} s"
    if advice:
        text += f"; {advice}"
    return CoachingItem(
        kind="improvement",
        corner=result.corner.name,
        text=text + ".",
        time_lost=lost,
        confidence=_confidence(lost, noise, corroborated),
        evidence=_evidence(result),
    )


def _strength(result: CornerResult, reference: str, noise: float, units: _Units) -> CoachingItem:
    lap, ref = result.lap, result.reference
    gained = -result.time_lost
    faster_apex = lap.min_speed - ref.min_speed
    faster_exit = lap.exit_speed - ref.exit_speed
    if faster_apex > SPEED_SLACK_KMH:
        how = f"carrying {faster_apex:.0f} km/h more through the apex"
    elif faster_exit > SPEED_SLACK_KMH:
        how = f"with {faster_exit:.0f} km/h more on the exit"
    else:
        how = "a cleaner line"
    return CoachingItem(
        kind="strength",
        corner=result.corner.name,
        text=f"{result.corner.name}: {gained:.2f} s faster than {reference}, {how}. Keep it.",
        time_lost=result.time_lost,
        confidence=_confidence(gained, noise, how != "a cleaner line"),
        evidence=_evidence(result),
    )


def _confidence(amount: float, noise: float, corroborated: bool) -> float:
    """Near 1 when the time is far above the noise and a channel explains it; lower otherwise."""
    base = float(np.clip(1.0 - noise / max(abs(amount), 1e-9), 0.05, 0.95))
    return round(base if corroborated else 0.6 * base, 2)


def _evidence(result: CornerResult) -> dict[str, object]:
    return {
        "corner": result.corner.name,
        "from": round(result.corner.start, 1),
        "to": round(result.corner.end, 1),
        "apex": round(result.corner.apex, 1),
        "timeLost": round(result.time_lost, 3),
        "entryLost": round(result.entry_lost, 3),
        "exitLost": round(result.exit_lost, 3),
        "lap": result.lap.to_json(),
        "reference": result.reference.to_json(),
    }


def _summary(
    lap_number: int | None,
    lap_time: float | None,
    delta: float,
    reference_label: str,
    reference_time: float | None,
    improvements: list[CoachingItem],
    strengths: list[CoachingItem],
) -> str:
    name = f"Lap {lap_number}" if lap_number is not None else "This lap"
    sign = "+" if delta >= 0 else "-"
    timed = f" {lap_time:.3f} s," if lap_time is not None else ""
    versus = f" ({reference_time:.3f} s)" if reference_time is not None else ""
    parts = [f"{name}:{timed} {sign}{abs(delta):.2f} s to {reference_label}{versus}."]
    if improvements:
        worst = improvements[0]
        parts.append(f"Most time lost in {worst.corner} ({worst.time_lost:.2f} s).")
    if strengths:
        best = strengths[0]
        parts.append(f"Best gain in {best.corner} ({-best.time_lost:.2f} s).")
    if not improvements and not strengths:
        parts.append("No corner stands out from the noise; keep it consistent.")
    return " ".join(parts)
