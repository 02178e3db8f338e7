"""Lap-versus-lap comparison on a common lap-distance grid, with the running time delta.

Each lap is given as columns holding its samples from the last one before the line to the first one after
it (`lap_samples` cuts those out of a session). Position along the lap comes from `lapDistPct` (unwrapped
around the line, scaled by the track length: given, else measured from `lapDist` or from the speed driven
over the lap, else 1) or, without it, from `lapDist`. A source with no lap fraction (a MoTeC log) gets one
from its speed, integrated from line to line (`lap_samples`), as MoTeC i2 does. The time at each grid
distance is interpolated, so at the finish the delta equals the difference of the two lap times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pitbox.errors import Invalid
from pitbox.telemetry.errors import BadPoints, LapTooShort, MissingChannels
from pitbox.telemetry.laps import Lap

FloatArray = npt.NDArray[np.float64]
Columns = Mapping[str, FloatArray]

#: Channels that hold their value between samples instead of being interpolated.
STEP_CHANNELS = frozenset({"gear", "lap"})


@dataclass(frozen=True, slots=True)
class LapComparison:
    """Both laps on one distance grid; `delta[i]` is lap B's time minus lap A's at `distance[i]`."""

    distance: FloatArray
    delta: FloatArray
    a: dict[str, FloatArray]
    b: dict[str, FloatArray]
    track_length: float


@dataclass(frozen=True, slots=True)
class _Trace:
    position: FloatArray  # distance from the line, increasing; negative before it
    keep: npt.NDArray[np.intp]  # samples used (position strictly increasing)
    elapsed: FloatArray  # seconds since the line, at each kept sample


def lap_samples(columns: Columns, lap: Lap) -> dict[str, FloatArray]:
    """The samples of `lap` plus one on each side of it, so its line crossings can be interpolated.

    Without `lapDistPct`, the lap's position is derived from its speed (see `with_lap_position`)."""
    t = np.asarray(columns["t"], dtype=np.float64)
    first = max(int(np.searchsorted(t, lap.t_start, side="right")) - 1, 0)
    last = min(int(np.searchsorted(t, lap.t_end, side="left")), t.size - 1)
    cut = {name: np.asarray(values, dtype=np.float64)[first : last + 1] for name, values in columns.items()}
    return with_lap_position(cut, lap.t_start, lap.t_end)


def with_lap_position(lap: Columns, t_start: float, t_end: float) -> dict[str, FloatArray]:
    """`lap` with `lapDistPct` and `lapDist` from its speed, integrated from the line at `t_start` to the line
    at `t_end`, when it has no `lapDistPct` of its own (a source's `lapDist` may be only approximate: MoTeC
    holds it for a second before each beacon). Unchanged when it has one, or no speed to integrate."""
    columns = {name: np.asarray(values, dtype=np.float64) for name, values in lap.items()}
    pct = columns.get("lapDistPct")
    if pct is not None and np.isfinite(pct).any():
        return columns
    t, speed = columns.get("t"), columns.get("speed")
    if t is None or speed is None or t.size < 2 or not np.isfinite(speed).any():
        return columns
    speed = np.interp(t, t[np.isfinite(speed)], speed[np.isfinite(speed)])
    driven = np.concatenate(([0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) / 3.6 * np.diff(t))))
    at_start, at_end = np.interp([t_start, t_end], t, driven)
    length = float(at_end - at_start)
    if length <= 0:
        return columns
    metres = driven - at_start
    columns["lapDistPct"] = np.mod(metres / length, 1.0)
    columns["lapDist"] = columns["lapDistPct"] * length
    return columns


def compare_laps(
    lap_a: Columns,
    lap_b: Columns,
    *,
    channels: Iterable[str] = ("speed", "throttle", "brake", "gear", "steering"),
    step: float | None = None,
    points: int | None = None,
    track_length: float | None = None,
) -> LapComparison:
    """Align two laps on distance and return both laps' `channels` and the running time delta.

    The grid runs from the line to the line every `step` (default 2 m, or 1/1000 of a lap without a
    track length) or at `points` evenly spaced distances.
    """
    length = track_length or _track_length(lap_a) or _track_length(lap_b) or 1.0
    trace_a, trace_b = _trace(lap_a, length), _trace(lap_b, length)
    if points is not None:
        if points < 2:
            raise BadPoints("a comparison needs at least 2 points")
        grid = np.linspace(0.0, length, points)
    else:
        spacing = step or (2.0 if length > 1.0 else 1.0 / 1000)
        grid = np.append(np.arange(0.0, length, spacing), length)
    delta = _elapsed_at(trace_b, grid) - _elapsed_at(trace_a, grid)
    names = list(channels)
    return LapComparison(
        distance=grid,
        delta=delta,
        a=_channels_at(lap_a, trace_a, grid, names),
        b=_channels_at(lap_b, trace_b, grid, names),
        track_length=length,
    )


def delta_at_finish(lap_a: Columns, lap_b: Columns, *, track_length: float | None = None) -> float:
    """Lap B's time minus lap A's, measured line to line on the distance alignment."""
    length = track_length or _track_length(lap_a) or _track_length(lap_b) or 1.0
    ends = np.array([0.0, length])
    elapsed_b = _elapsed_at(_trace(lap_b, length), ends)
    elapsed_a = _elapsed_at(_trace(lap_a, length), ends)
    return float(elapsed_b[1] - elapsed_a[1])


def lap_length(lap: Columns) -> float | None:
    """The length (m) a lap's own samples show, line to line; None when they cannot tell."""
    return _track_length(lap)


def _track_length(lap: Columns) -> float | None:
    """Track length in metres from lapDist / lapDistPct away from the line, when both are there, else from the
    speed driven between the line crossings."""
    if "lapDistPct" not in lap:
        return None
    pct = np.asarray(lap["lapDistPct"], dtype=np.float64)
    if "lapDist" in lap:
        dist = np.asarray(lap["lapDist"], dtype=np.float64)
        usable = (pct > 0.1) & (pct < 0.9) & np.isfinite(dist)
        if usable.any():
            return float(np.median(dist[usable] / pct[usable]))
    if "speed" not in lap or "t" not in lap:
        return None
    try:
        trace = _trace(lap, 1.0)
    except Invalid:
        return None
    t = np.asarray(lap["t"], dtype=np.float64)[trace.keep]
    speed = np.asarray(lap["speed"], dtype=np.float64)[trace.keep]
    if trace.position[0] > 0 or trace.position[-1] < 1 or not np.isfinite(speed).all():
        return None
    driven = np.concatenate(([0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) / 3.6 * np.diff(t))))
    at_line = np.interp([0.0, 1.0], trace.position, driven)
    length = float(at_line[1] - at_line[0])
    return length if length > 0 else None


def _trace(lap: Columns, length: float) -> _Trace:
    if "t" not in lap:
        raise MissingChannels("a lap needs the t channel")
    t = np.asarray(lap["t"], dtype=np.float64)
    if "lapDistPct" in lap:
        raw, period, scale = np.asarray(lap["lapDistPct"], dtype=np.float64), 1.0, length
    elif "lapDist" in lap:
        raw, period, scale = np.asarray(lap["lapDist"], dtype=np.float64), length, 1.0
    else:
        raise MissingChannels("a lap needs lapDistPct or lapDist")
    present = np.flatnonzero(np.isfinite(raw) & np.isfinite(t))
    if present.size < 2:
        raise LapTooShort("a lap needs at least 2 samples with a position")
    steps = np.diff(raw[present])
    steps -= period * np.rint(steps / period)  # a pass over the line is a small step, not a drop of a lap
    position = raw[present[0]] + np.concatenate(([0.0], np.cumsum(steps)))
    if raw[present[0]] > period / 2:  # the sample before the line
        position -= period
    position = np.maximum.accumulate(position * scale)
    increasing = np.concatenate(([True], np.diff(position) > 0))
    keep = present[increasing]
    position = position[increasing]
    elapsed_t = t[keep]
    start = np.interp(0.0, position, elapsed_t)
    return _Trace(position=position, keep=keep, elapsed=elapsed_t - start)


def _elapsed_at(trace: _Trace, grid: FloatArray) -> FloatArray:
    return np.interp(grid, trace.position, trace.elapsed)


def _channels_at(lap: Columns, trace: _Trace, grid: FloatArray, names: list[str]) -> dict[str, FloatArray]:
    out: dict[str, FloatArray] = {}
    for name in names:
        if name not in lap:
            continue
        values = np.asarray(lap[name], dtype=np.float64)[trace.keep]
        if name in STEP_CHANNELS:
            held = np.clip(np.searchsorted(trace.position, grid, side="right") - 1, 0, values.size - 1)
            out[name] = values[held]
        else:
            out[name] = np.interp(grid, trace.position, values)
    return out
