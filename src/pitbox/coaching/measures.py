"""What each lap did through each corner, read on the comparison's distance grid (no I/O, plain numpy).

The definitions are the contract the coaching items rest on (docs/ai-agent.md, "Measures"); a test recomputes
them from the raw recordings:

* brake point: where the brake pedal first reaches `BRAKE_ON` (after being below it) from the window's start
  to the apex; a source with no pedal sensor (a MoTeC logger) brakes with its line pressure, as a fraction of
  the lap's highest;
* lift point: where the throttle first falls below `THROTTLE_OFF` (after being above it) over the same stretch;
* minimum speed and where: the lowest speed from the window's start to the exit point;
* full-throttle point: where the throttle first reaches `FULL_THROTTLE` of the lap's highest throttle, from
  the lap's own minimum-speed point to the corner's end;
* exit speed: the speed at the exit point; gear: the gear at the lap's minimum-speed point.

The window of a corner starts up to `LEAD_M` before its segment (half the way back to the previous apex at
most), so a brake point just before the segment is still found; the exit point is up to `LEAD_M` after the
apex (half the way to the segment's end at most).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from pitbox.coaching.models import Corner, CornerMeasures, CornerResult, Window
from pitbox.telemetry.compare import LapComparison

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

#: Pedal positions (0..1) that count as "on the brake", "off the throttle" and "full throttle".
BRAKE_ON = 0.1
THROTTLE_OFF = 0.5
FULL_THROTTLE = 0.9
#: How far before a corner's segment its window starts, and after its apex its exit point lies (metres).
LEAD_M = 150.0


class Loop:
    """Grid positions of a lap treated as a loop: circular ranges in metres to grid indices."""

    def __init__(self, comparison: LapComparison) -> None:
        self.length = comparison.track_length
        self.step = float(comparison.distance[1] - comparison.distance[0])
        self.n = comparison.distance.size - 1  # the last grid point is the line again

    def span(self, start: float, end: float) -> float:
        """Distance from `start` forward to `end`, going round the loop."""
        return (end - start) % self.length

    def indices(self, start: float, end: float) -> IndexArray:
        """Grid indices from `start` forward to `end` (both included)."""
        first = int(round(start / self.step)) % self.n
        count = int(round(self.span(start, end) / self.step))
        return (first + np.arange(count + 1)) % self.n

    def at(self, index: int) -> float:
        """Metres from the line of a grid index."""
        return float(index % self.n) * self.step


def delta_growth(comparison: LapComparison, start: float, end: float) -> float:
    """How much the running delta grows from `start` to `end` (metres), through the line if end < start."""
    distance, delta = comparison.distance, comparison.delta
    at_start = float(np.interp(start, distance, delta))
    at_end = float(np.interp(end, distance, delta))
    if end >= start:
        return at_end - at_start
    return (float(delta[-1]) - at_start) + (at_end - float(delta[0]))


def corner_window(loop: Loop, corners: Sequence[Corner], index: int) -> Window:
    """Where the measures of corner `index` are read."""
    corner = corners[index]
    previous_apex = corners[index - 1].apex if len(corners) > 1 else corner.apex - loop.length / 2
    lead = min(LEAD_M, 0.5 * loop.span(previous_apex, corner.start))
    start = (corner.start - lead) % loop.length
    exit_point = (corner.apex + min(LEAD_M, 0.5 * loop.span(corner.apex, corner.end))) % loop.length
    return Window(start=start, apex=corner.apex, exit=exit_point, end=corner.end)


def compare_corner(comparison: LapComparison, corners: Sequence[Corner], index: int) -> CornerResult:
    """Both laps' measures through corner `index` and the time lost over its segment, entry and exit."""
    corner = corners[index]
    loop = Loop(comparison)
    window = corner_window(loop, corners, index)
    measures = [measure(side, loop, window) for side in (comparison.b, comparison.a)]
    return CornerResult(
        corner=corner,
        number=index + 1,
        lap=measures[0],
        reference=measures[1],
        time_lost=delta_growth(comparison, corner.start, corner.end),
        entry_lost=delta_growth(comparison, corner.start, corner.apex),
        exit_lost=delta_growth(comparison, corner.apex, corner.end),
        window=window,
    )


def measure(side: dict[str, FloatArray], loop: Loop, window: Window) -> CornerMeasures:
    """One lap's measures through a corner's window."""
    speed = side["speed"]
    entry = loop.indices(window.start, window.apex)
    whole = loop.indices(window.start, window.exit)
    slowest = int(whole[int(np.nanargmin(speed[whole]))])
    brake_point = first_crossing(braking(side), entry, lambda v: v >= BRAKE_ON)
    lift_point = first_crossing(side.get("throttle"), entry, lambda v: v < THROTTLE_OFF)
    full_throttle = None
    throttle = side.get("throttle")
    if throttle is not None:
        top = max(float(np.nanmax(throttle)), 0.5)
        after_minimum = loop.indices(loop.at(slowest), window.end)
        full_throttle = first_crossing(
            throttle, after_minimum, lambda v: v >= FULL_THROTTLE * top, require_off=False
        )
    exit_index = int(round(window.exit / loop.step)) % loop.n
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


def braking(side: dict[str, FloatArray]) -> FloatArray | None:
    """The brake pedal (0..1), else the brake pressure as a fraction of the lap's highest, else None."""
    if "brake" in side:
        return side["brake"]
    pressure = side.get("brakePressure")
    if pressure is None or not np.isfinite(pressure).any() or float(np.nanmax(pressure)) <= 0:
        return None
    return pressure / float(np.nanmax(pressure))


def first_crossing(
    values: FloatArray | None,
    indices: IndexArray,
    condition: Callable[[FloatArray], npt.NDArray[np.bool_]],
    *,
    require_off: bool = True,
) -> int | None:
    """First index in `indices` where `condition` becomes true (after being false, when `require_off`; at the
    first index when it holds from the start)."""
    if values is None or indices.size == 0:
        return None
    hits = np.asarray(condition(np.nan_to_num(values[indices], nan=0.0)), dtype=bool)
    if not hits.any():
        return None
    if require_off:
        starts = np.flatnonzero(hits[1:] & ~hits[:-1]) + 1
        if starts.size:
            return int(indices[starts[0]])
        return int(indices[0]) if hits[0] else None
    return int(indices[int(np.argmax(hits))])


def ahead(a: float | None, b: float | None, length: float) -> float | None:
    """How far `a` is after `b` along the lap (negative: before), for two points of the same corner."""
    if a is None or b is None:
        return None
    difference = (a - b) % length
    return difference - length if difference > length / 2 else difference
