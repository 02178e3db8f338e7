"""Lap detection: completed laps with exact line-crossing times, sector times and a validity verdict.

A lap ends where `lapDistPct` wraps from near 1 to near 0; the crossing time is interpolated between the two
samples around the wrap. The `lap` counter, when present, only names laps and flags trouble (going
backwards or leaping). `LapDetector` is fed chunk after chunk and gives the same laps as one call of
`detect_laps` on the whole session, because every decision looks only at consecutive pairs of samples.

A lap is emitted when it completes, valid or not; `invalid_reasons` says why one does not count:

* ``started_mid_lap`` -- the first partial lap (out-lap from the pits) or the lap after a reset or jump;
* ``time_gap``        -- samples further apart than `max_gap_s` inside the lap (tow, pause, lost data);
* ``short``           -- it covered less than `min_coverage` of the lap distance.

A reset (lap counter going backwards, `lapDistPct` jumping faster than any car could drive) abandons the
lap in progress: it is never emitted, and a new lap starts, mid-lap, from the new position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pitbox.errors import Invalid

FloatArray = npt.NDArray[np.float64]

DEFAULT_SPLITS: tuple[float, ...] = (1 / 3, 2 / 3)


@dataclass(frozen=True, slots=True)
class Lap:
    """One completed lap: times in the session clock (`t`), sector times in seconds (None when not driven)."""

    number: int
    t_start: float
    t_end: float
    lap_time: float
    sectors: tuple[float | None, ...]
    valid: bool
    invalid_reasons: tuple[str, ...]


@dataclass(slots=True)
class _LapInProgress:
    number: int | None
    t_start: float
    from_line: bool
    split_times: list[float | None]
    coverage: float = 0.0
    reasons: set[str] = field(default_factory=set)


class LapDetector:
    """Incremental lap detector: feed it chunks of columns (`t`, `lapDistPct`, optional `lap`) in order."""

    def __init__(
        self,
        *,
        splits: Sequence[float] = DEFAULT_SPLITS,
        max_gap_s: float = 1.0,
        min_lap_s: float = 5.0,
        jump_slack: float = 0.01,
        min_coverage: float = 0.9,
    ) -> None:
        """Build a detector; `min_lap_s` bounds how fast `lapDistPct` may move before it counts as a jump."""
        if any(not 0.0 < split < 1.0 for split in splits) or list(splits) != sorted(splits):
            raise Invalid("sector splits must be increasing fractions between 0 and 1", code="bad_splits")
        self._splits = tuple(float(split) for split in splits)
        self._max_gap_s = max_gap_s
        self._max_rate = 1.0 / min_lap_s
        self._jump_slack = jump_slack
        self._min_coverage = min_coverage
        self._last: tuple[float, float, float] | None = None  # t, lapDistPct, lap (NaN when unknown)
        self._current: _LapInProgress | None = None
        self._counted = 0  # laps seen when no lap counter names them

    def feed(self, columns: Mapping[str, Iterable[float | int | None]]) -> list[Lap]:
        """Process the next chunk of samples and return the laps completed in it."""
        t, pct, lap = _lap_columns(columns)
        present = ~(np.isnan(t) | np.isnan(pct))
        t, pct, lap = t[present], pct[present], lap[present]
        if t.size == 0:
            return []
        if self._last is not None:
            t = np.concatenate(([self._last[0]], t))
            pct = np.concatenate(([self._last[1]], pct))
            lap = np.concatenate(([self._last[2]], lap))
        elif self._current is None:
            self._current = self._start(t[0], pct[0], lap[0], from_line=False)
        self._last = (float(t[-1]), float(pct[-1]), float(lap[-1]))
        if t.size < 2:
            return []
        return self._pairs(t, pct, lap)

    def _start(self, t: float, pct: float, lap: float, *, from_line: bool) -> _LapInProgress:
        number = None if np.isnan(lap) else int(lap)
        splits: list[float | None] = [None] * len(self._splits)
        return _LapInProgress(number, float(t), from_line, splits)

    def _pairs(self, t: FloatArray, pct: FloatArray, lap: FloatArray) -> list[Lap]:
        dt = np.diff(t)
        raw_step = np.diff(pct)
        step = raw_step - np.rint(raw_step)  # movement along the lap, a wrap counted as a small step forward
        wrapped = raw_step < -0.5
        backwards_over_line = raw_step > 0.5
        # Forward faster than any car could go, or backwards more than a spin can roll: a reset or a tow.
        jump = (step > self._max_rate * np.maximum(dt, 0.0) + self._jump_slack) | (step < -self._jump_slack)
        lap_step = np.diff(lap)
        counter_reset = (lap_step < 0) | (lap_step > 1)  # NaN compares false: no counter, no reset
        restart = jump | counter_reset | backwards_over_line | (dt < 0)
        gap = dt > self._max_gap_s
        forward = np.where(restart, 0.0, step)
        coverage = np.concatenate(([0.0], np.cumsum(forward)))

        split_hits = np.zeros(dt.size, dtype=bool)
        for split in self._splits:
            split_hits |= (pct[:-1] < split) & (pct[1:] >= split)
            split_hits |= wrapped & ((pct[:-1] < split) | (pct[1:] >= split))
        events = np.flatnonzero(restart | gap | wrapped | split_hits)

        laps: list[Lap] = []
        current = self._current
        assert current is not None
        counted_from = 0
        for index in events.tolist():
            before, after = index, index + 1
            if restart[index]:
                current.coverage += coverage[before] - coverage[counted_from]
                current = self._start(t[after], pct[after], lap[after], from_line=False)
                counted_from = after
                continue
            if gap[index]:
                current.reasons.add("time_gap")
            if wrapped[index]:
                crossing = _crossing_time(t[before], t[after], pct[before], pct[after] + 1.0, 1.0)
                self._mark_splits(current, t, pct, before, after, wrapped=True, new_lap=False)
                current.coverage += coverage[before] - coverage[counted_from] + (1.0 - pct[before])
                laps.append(self._finish(current, crossing, lap[before]))
                current = self._start(crossing, 0.0, lap[after], from_line=True)
                current.coverage += max(pct[after], 0.0)
                counted_from = after
                self._mark_splits(current, t, pct, before, after, wrapped=True, new_lap=True)
            else:
                self._mark_splits(current, t, pct, before, after, wrapped=False, new_lap=False)
        current.coverage += coverage[-1] - coverage[counted_from]
        self._current = current
        return laps

    def _mark_splits(
        self,
        current: _LapInProgress,
        t: FloatArray,
        pct: FloatArray,
        before: int,
        after: int,
        *,
        wrapped: bool,
        new_lap: bool,
    ) -> None:
        """Record the first crossing of each split between samples `before` and `after`."""
        p0, p1 = float(pct[before]), float(pct[after])
        for index, split in enumerate(self._splits):
            if current.split_times[index] is not None:
                continue
            if wrapped:
                hit = p1 >= split if new_lap else p0 < split
                end = p1 + 1.0
                target = split + 1.0 if new_lap else split
            else:
                hit = p0 < split <= p1
                end, target = p1, split
            if hit:
                current.split_times[index] = _crossing_time(t[before], t[after], p0, end, target)

    def _finish(self, current: _LapInProgress, t_end: float, lap_before: float) -> Lap:
        reasons = set(current.reasons)
        if not current.from_line:
            reasons.add("started_mid_lap")
        if current.coverage < self._min_coverage:
            reasons.add("short")
        number = current.number if np.isnan(lap_before) else int(lap_before)
        if number is None:
            number = self._counted
        self._counted = number + 1
        marks: list[float | None] = [
            current.t_start if current.from_line else None,
            *current.split_times,
            t_end,
        ]
        sectors = tuple(
            None if start is None or end is None else end - start
            for start, end in zip(marks[:-1], marks[1:], strict=True)
        )
        return Lap(
            number=number,
            t_start=current.t_start,
            t_end=t_end,
            lap_time=t_end - current.t_start,
            sectors=sectors,
            valid=not reasons,
            invalid_reasons=tuple(sorted(reasons)),
        )


def detect_laps(
    columns: Mapping[str, Iterable[float | int | None]], *, splits: Sequence[float] = DEFAULT_SPLITS
) -> list[Lap]:
    """All laps completed in a whole session's columns (`t`, `lapDistPct`, optional `lap`)."""
    return LapDetector(splits=splits).feed(columns)


def _lap_columns(
    columns: Mapping[str, Iterable[float | int | None]],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    if "t" not in columns or "lapDistPct" not in columns:
        raise Invalid("lap detection needs the t and lapDistPct channels", code="missing_channels")
    t = np.asarray(columns["t"], dtype=np.float64)
    pct = np.asarray(columns["lapDistPct"], dtype=np.float64)
    lap = np.asarray(columns["lap"], dtype=np.float64) if "lap" in columns else np.full(t.shape, np.nan)
    if not t.shape == pct.shape == lap.shape or t.ndim != 1:
        raise Invalid("t, lapDistPct and lap need the same number of samples", code="ragged_chunk")
    return t, pct, lap


def _crossing_time(t0: float, t1: float, p0: float, p1: float, target: float) -> float:
    """Time at which position `target` was passed between (t0, p0) and (t1, p1), linearly interpolated."""
    if p1 <= p0:
        return float(t1)
    fraction = min(max((target - p0) / (p1 - p0), 0.0), 1.0)
    return float(t0 + fraction * (t1 - t0))


def measured_track_length(columns: Mapping[str, Iterable[float | int | None]]) -> float | None:
    """The lap length (m) the data itself shows: lap distance over lap fraction where both are given, else
    the distance driven (integrated speed) per lap fraction covered; None when the data cannot tell."""
    pct = _column(columns, "lapDistPct")
    dist = _column(columns, "lapDist")
    if pct is not None and dist is not None:
        usable = (pct > 0.1) & (pct < 0.9) & np.isfinite(dist) & (dist > 0)
        if usable.sum() >= 10:
            return float(np.median(dist[usable] / pct[usable]))
    t, speed = _column(columns, "t"), _column(columns, "speed")
    if pct is not None and t is not None and speed is not None:
        step = np.diff(pct)
        step -= np.rint(step)
        dt = np.diff(t)
        # Forward movement only: no resets, pauses or tows, and no stretch where the position stands still
        # while the speed does not (a paused game repeating its last packet).
        changed = np.concatenate(([True], step != 0))
        last_change = np.maximum.accumulate(np.where(changed, np.arange(pct.size), 0))
        fresh = (t - t[last_change])[1:] < 0.5
        moving = (step >= 0) & (step < 0.05) & (dt >= 0) & (dt <= 1.0) & fresh
        moving &= np.isfinite(speed[:-1] + speed[1:])
        covered = float(step[moving].sum())
        if covered >= 0.5:
            driven = float(np.sum((0.5 * (speed[:-1] + speed[1:]) / 3.6 * dt)[moving]))
            return driven / covered
    return None


def _column(columns: Mapping[str, Iterable[float | int | None]], name: str) -> FloatArray | None:
    if name not in columns:
        return None
    values = np.asarray(columns[name], dtype=np.float64)
    return values if np.isfinite(values).any() else None
