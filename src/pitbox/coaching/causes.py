"""Why a corner phase lost (or won) time: the measured causes, each with the lap's and the reference's value.

For a loss on the entry (segment start to apex) the candidates are, in this order: braking (or lifting)
earlier than the reference; braking later but carrying less speed through the minimum (overdriving); a lower
minimum speed; another gear; a different line. For a loss on the exit (apex to segment end): full throttle
later; a lower exit speed; a lower minimum speed; another gear; a different line. A difference counts only
beyond what a driver repeats lap to lap (`POINT_SLACK_M`, `SPEED_SLACK_KMH`, `THROTTLE_SLACK_M`,
`LINE_SLACK_M`). A line is spoken of only when both laps carry position (x/y or lat/lon). Where no candidate
explains the time, the causes are the channels that differ most over the range (mean difference against the
channel's spread on the reference lap), so the item never invents a reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pitbox.coaching.measures import Loop, ahead
from pitbox.coaching.models import Cause, CauseKind, CornerResult, Phase, Reading
from pitbox.telemetry.compare import LapComparison

FloatArray = npt.NDArray[np.float64]

#: Differences below these are within what a driver repeats lap to lap: not a cause.
POINT_SLACK_M = 5.0
SPEED_SLACK_KMH = 2.0
THROTTLE_SLACK_M = 10.0
LINE_SLACK_M = 1.5
#: Channels compared when no measure explains a loss, with their units.
DIFFERING_CHANNELS = {
    "speed": "km/h",
    "throttle": "",
    "brake": "",
    "brakePressure": "kPa",
    "steering": "rad",
    "gear": "",
    "rpm": "1/min",
    "gLat": "g",
    "gLong": "g",
}
#: Metres per degree of latitude (and of longitude at the equator), for paths given as GPS.
METRES_PER_DEGREE = 111_195.0


def causes_of_loss(result: CornerResult, phase: Phase, loop_length: float) -> list[Cause]:
    """The measured causes of time lost in `phase` of a corner, main one first (empty when none holds)."""
    causes: list[Cause] = []
    if phase in ("entry", "corner"):
        causes += _entry_causes(result, loop_length)
    if phase in ("exit", "corner"):
        causes += [cause for cause in _exit_causes(result, loop_length) if cause not in causes]
    gear = _gear(result)
    if gear is not None:
        causes.append(gear)
    return causes


def causes_of_gain(result: CornerResult, loop_length: float) -> list[Cause]:
    """What the lap did better through a corner it won on both entry and exit."""
    lap, ref = result.lap, result.reference
    causes: list[Cause] = []
    if lap.min_speed - ref.min_speed > SPEED_SLACK_KMH:
        causes.append(_min_speed(result))
    if lap.exit_speed - ref.exit_speed > SPEED_SLACK_KMH:
        causes.append(_exit_speed(result))
    brake_shift = ahead(lap.brake_point, ref.brake_point, loop_length)
    if brake_shift is not None and brake_shift > POINT_SLACK_M and lap.brake_point is not None:
        causes.append(_point("brake_point", lap.brake_point, ref.brake_point, brake_shift))
    throttle_shift = ahead(lap.full_throttle_at, ref.full_throttle_at, loop_length)
    if throttle_shift is not None and throttle_shift < -THROTTLE_SLACK_M and lap.full_throttle_at is not None:
        causes.append(_point("throttle_point", lap.full_throttle_at, ref.full_throttle_at, throttle_shift))
    return causes


def _entry_causes(result: CornerResult, loop_length: float) -> list[Cause]:
    lap, ref = result.lap, result.reference
    slower_minimum = ref.min_speed - lap.min_speed > SPEED_SLACK_KMH
    causes: list[Cause] = []
    points: tuple[tuple[CauseKind, float | None, float | None], ...] = (
        ("brake_point", lap.brake_point, ref.brake_point),
        ("lift", lap.lift_point, ref.lift_point),
    )
    for kind, mine, theirs in points:
        shift = ahead(mine, theirs, loop_length)
        if shift is None or mine is None or theirs is None:
            continue
        if shift < -POINT_SLACK_M or (shift > POINT_SLACK_M and slower_minimum):
            causes.append(_point(kind, mine, theirs, shift))
        break  # the lift speaks only for a lap that never braked
    if slower_minimum:
        causes.append(_min_speed(result))
    return causes


def _exit_causes(result: CornerResult, loop_length: float) -> list[Cause]:
    lap, ref = result.lap, result.reference
    causes: list[Cause] = []
    shift = ahead(lap.full_throttle_at, ref.full_throttle_at, loop_length)
    if shift is not None and shift > THROTTLE_SLACK_M and lap.full_throttle_at is not None:
        causes.append(_point("throttle_point", lap.full_throttle_at, ref.full_throttle_at, shift))
    if ref.exit_speed - lap.exit_speed > SPEED_SLACK_KMH:
        causes.append(_exit_speed(result))
    if ref.min_speed - lap.min_speed > SPEED_SLACK_KMH:
        causes.append(_min_speed(result))
    return causes


def _point(kind: CauseKind, mine: float, theirs: float | None, shift: float) -> Cause:
    assert theirs is not None
    return Cause(kind, "m", Reading(mine, mine), Reading(theirs, theirs), along_lap=shift)


def _min_speed(result: CornerResult) -> Cause:
    lap, ref = result.lap, result.reference
    return Cause(
        "min_speed",
        "km/h",
        Reading(lap.min_speed, lap.min_speed_at),
        Reading(ref.min_speed, ref.min_speed_at),
    )


def _exit_speed(result: CornerResult) -> Cause:
    exit_point = result.window.exit
    return Cause(
        "exit_speed",
        "km/h",
        Reading(result.lap.exit_speed, exit_point),
        Reading(result.reference.exit_speed, exit_point),
    )


def _gear(result: CornerResult) -> Cause | None:
    lap, ref = result.lap, result.reference
    if lap.gear is None or ref.gear is None or lap.gear == ref.gear:
        return None
    return Cause("gear", "", Reading(lap.gear, lap.min_speed_at), Reading(ref.gear, ref.min_speed_at))


def line_cause(comparison: LapComparison, start: float, end: float) -> Cause | None:
    """How far apart the two paths were over a range, at their widest, when both laps carry position."""
    paths = _paths(comparison)
    if paths is None:
        return None
    (ax, ay), (bx, by) = paths
    loop = Loop(comparison)
    indices = loop.indices(start, end)
    apart = np.hypot(bx[indices] - ax[indices], by[indices] - ay[indices])
    if not np.isfinite(apart).any():
        return None
    widest = int(indices[int(np.nanargmax(apart))])
    separation = float(np.nanmax(apart))
    if separation < LINE_SLACK_M:
        return None
    at = loop.at(widest)
    return Cause("line", "m", Reading(separation, at), Reading(0.0, at))


def _paths(
    comparison: LapComparison,
) -> tuple[tuple[FloatArray, FloatArray], tuple[FloatArray, FloatArray]] | None:
    """(reference x, y), (lap x, y) in metres, from x/y or from GPS; None without position on both laps."""
    ref, lap = comparison.a, comparison.b
    if all(name in ref and name in lap for name in ("x", "y")):
        return (ref["x"], ref["y"]), (lap["x"], lap["y"])
    if all(name in ref and name in lap for name in ("lat", "lon")):
        latitude = np.radians(float(np.nanmean(ref["lat"])))
        scale_x = METRES_PER_DEGREE * np.cos(latitude)
        return (
            (ref["lon"] * scale_x, ref["lat"] * METRES_PER_DEGREE),
            (lap["lon"] * scale_x, lap["lat"] * METRES_PER_DEGREE),
        )
    return None


def differing_channels(comparison: LapComparison, start: float, end: float, *, count: int = 2) -> list[Cause]:
    """The channels whose average differs most between the laps over a range (against each channel's spread
    over the reference lap), as `channel_difference` causes with both averages."""
    loop = Loop(comparison)
    indices = loop.indices(start, end)
    scored: list[tuple[float, Cause]] = []
    for name, unit in DIFFERING_CHANNELS.items():
        if name not in comparison.a or name not in comparison.b:
            continue
        ref, lap = comparison.a[name][indices], comparison.b[name][indices]
        both = np.isfinite(ref) & np.isfinite(lap)
        if both.sum() < 2:
            continue
        whole = comparison.a[name][np.isfinite(comparison.a[name])]
        spread = float(np.percentile(whole, 95) - np.percentile(whole, 5)) if whole.size else 0.0
        if spread <= 0:
            continue
        score = float(np.mean(np.abs(lap[both] - ref[both]))) / spread
        cause = Cause(
            "channel_difference",
            unit,
            Reading(float(np.mean(lap[both])), None),
            Reading(float(np.mean(ref[both])), None),
            channel=name,
        )
        scored.append((score, cause))
    scored.sort(key=lambda pair: -pair[0])
    return [cause for _, cause in scored[:count]]


def describe(cause: Cause, reference: str) -> str:
    """The cause in words, with both numbers."""
    lap, ref = cause.lap.value, cause.reference.value
    gap = abs(cause.difference)
    if cause.kind in ("brake_point", "lift"):
        verb = "braked" if cause.kind == "brake_point" else "lifted"
        direction = "earlier" if cause.difference < 0 else "later"
        return f"you {verb} {gap:.0f} m {direction} than {reference} (at {lap:.0f} m vs {ref:.0f} m)"
    if cause.kind == "min_speed":
        more = "higher" if lap > ref else "lower"
        where = f" at {cause.lap.at:.0f} m" if cause.lap.at is not None else ""
        return f"your minimum speed was {gap:.0f} km/h {more} ({lap:.0f} vs {ref:.0f} km/h{where})"
    if cause.kind == "throttle_point":
        direction = "later" if cause.difference > 0 else "earlier"
        return (
            f"you were back to full throttle {gap:.0f} m {direction} than {reference}"
            f" (at {lap:.0f} m vs {ref:.0f} m)"
        )
    if cause.kind == "exit_speed":
        more = "higher" if lap > ref else "lower"
        where = f" at {cause.lap.at:.0f} m" if cause.lap.at is not None else ""
        return f"exit speed was {gap:.0f} km/h {more} ({lap:.0f} vs {ref:.0f} km/h{where})"
    if cause.kind == "gear":
        return f"you took it in gear {lap:.0f} where {reference} used {ref:.0f}"
    if cause.kind == "line":
        return f"your line was {lap:.1f} m from {reference}'s at {cause.lap.at:.0f} m"
    unit = f" {cause.unit}" if cause.unit else ""
    digits = 0 if cause.unit in ("km/h", "1/min") else 2
    return f"{cause.channel} averaged {lap:.{digits}f}{unit} vs {ref:.{digits}f}{unit}"


ADVICE = {
    "brake_point": "brake where {reference} did",
    "lift": "lift where {reference} did",
    "min_speed": "release the brake earlier and carry more speed to the apex",
    "throttle_point": "get the car turned earlier and squeeze the throttle sooner",
    "exit_speed": "open the steering and get on the power earlier for the exit",
    "gear": "use the gear {reference} used",
    "line": "take {reference}'s line",
}


def advice(causes: Sequence[Cause], reference: str) -> str:
    """What to do about the main cause (nothing for channel differences: they name no action)."""
    if not causes or causes[0].kind == "channel_difference":
        return ""
    first = causes[0]
    if first.kind == "brake_point" and first.difference > 0:
        return f"you are overdriving the entry: brake where {reference} did and roll more speed to the apex"
    return ADVICE[first.kind].format(reference=reference)
