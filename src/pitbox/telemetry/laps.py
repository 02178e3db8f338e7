"""Lap detection from any source: completed laps with line-crossing times, sector times, the lap's length and a
validity verdict.

A lap ends where the car crosses the line, read from the best signal the source has, pair of samples by pair:

1. `lapDistPct` wrapping from near 1 to near 0 (iRacing, Assetto Corsa): the crossing is interpolated;
2. `lapDist` falling back to near 0 (MoTeC, F1);
3. the running lap timer `lapTime` resetting;
4. the `lap` counter going up by one;
5. the source's `lastLapTime` taking a new value (the lap ended at that sample).

When a running lap timer is present and was reset within `TIMER_FRESH_S`, the crossing is dated by it
(`t - lapTime`): a logger that notices the beacon late (MoTeC holds its lap distance for a second or two)
still gives the true line time. The lap time is the source's own when it gives one (`lastLapTime` changing
within `SETTLE_S` after the crossing, so a completed lap waits that long for it), else the time between
crossings. Sector times and the lap's length come from the distance driven: `lapDistPct`, else speed
integrated over time, else `lapDist`. The lap counter names laps; a number already used goes on counting.

`LapDetector` is fed chunk after chunk and gives the same laps as one call of `detect_laps` on the whole
session: every decision looks at consecutive samples, and a lap waiting for the source's time is settled by
samples alone (the change of `lastLapTime`, or a sample `SETTLE_S` after its end).

A lap is emitted when it completes, valid or not; `invalid_reasons` says why one does not count:

* ``started_mid_lap`` -- the first partial lap (out-lap from the pits) or the lap after a reset or jump;
* ``time_gap``        -- samples further apart than `max_gap_s` inside the lap (tow, pause, lost data);
* ``short``           -- it covered less than `min_coverage` of the lap distance.

A reset (lap counter going backwards, the lap position jumping faster than any car could drive) abandons the
lap in progress: it is never emitted, and a new lap starts, mid-lap, from the new position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from pitbox.telemetry.errors import BadSplits, MissingChannels, RaggedChunk

FloatArray = npt.NDArray[np.float64]

DEFAULT_SPLITS: tuple[float, ...] = (1 / 3, 2 / 3)
#: The channels lap detection reads (any of them may be missing but `t`), and those that mark the line.
LAP_CHANNELS = ("t", "lapDistPct", "lapDist", "lapTime", "lap", "lastLapTime", "speed")
LAP_SIGNALS = ("lapDistPct", "lapDist", "lapTime", "lap", "lastLapTime")
#: A lap timer read this soon after its reset dates the crossing (seconds).
TIMER_FRESH_S = 5.0
#: How long (of session time) a completed lap waits for the source's own lap time before it goes without.
SETTLE_S = 5.0
#: No car moves along the lap faster than this (m/s); a faster step of `lapDist` is a reset or a tow.
MAX_SPEED_MS = 150.0
#: The source's lap time is taken when it agrees with the crossings this well (a guard against a value that
#: belongs to another lap).
SOURCE_TIME_SLACK = 0.02


@dataclass(frozen=True, slots=True)
class Lap:
    """One completed lap: times in the session clock (`t`), sector times in seconds (None when not driven),
    and the lap's length in metres as its own data measured it (None when the data cannot tell)."""

    number: int
    t_start: float
    t_end: float
    lap_time: float
    sectors: tuple[float | None, ...]
    valid: bool
    invalid_reasons: tuple[str, ...]
    length_m: float | None = None


@dataclass(slots=True)
class _LapInProgress:
    number: int | None
    t_start: float
    from_line: bool
    first_u: float  # lap position (in laps) at its first sample, NaN without lapDistPct
    reasons: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Waiting:
    """A completed lap waiting for the source's own lap time."""

    lap: Lap
    source_time: float | None = None
    settled: bool = False


@dataclass
class _Chunk:
    """One chunk's samples (with the previous chunk's last sample first) and what each pair of them means."""

    t: FloatArray
    pct: FloatArray
    dist: FloatArray
    timer: FloatArray
    counter: FloatArray
    last: FloatArray
    speed: FloatArray


class LapDetector:
    """Incremental lap detector: feed it chunks of columns (`t` and any of LAP_CHANNELS) in order."""

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
            raise BadSplits("sector splits must be increasing fractions between 0 and 1")
        self._splits = tuple(float(split) for split in splits)
        self._max_gap_s = max_gap_s
        self._max_rate = 1.0 / min_lap_s
        self._jump_slack = jump_slack
        self._min_coverage = min_coverage
        self._last_sample: dict[str, float] | None = None
        self._current: _LapInProgress | None = None
        self._counted = 0  # the next lap number when the counter does not name one (or names one used)
        self._wraps = 0  # line crossings seen on lapDistPct: the lap position `u` is wraps + lapDistPct
        self._last_value = np.nan  # the source's last lap time seen, to notice a new one
        self._source_times = False  # whether the source has ever given a lap time
        self._reference_length: float | None = None  # length of the last lap driven line to line
        self._waiting: list[_Waiting] = []
        # The samples since the lap in progress started: time, lap position u, odometer (integrated metres).
        self._trace_t = np.empty(0)
        self._trace_u = np.empty(0)
        self._trace_m = np.empty(0)
        self._odometer = 0.0

    def feed(self, columns: Mapping[str, Iterable[float | int | None]]) -> list[Lap]:
        """Process the next chunk of samples and return the laps completed (and settled) in it."""
        chunk = self._chunk(columns)
        if chunk is None:
            return []
        self._trace(chunk)
        if chunk.t.size >= 2:
            self._pairs(chunk)
        return self._release(float(chunk.t[-1]))

    def finish(self) -> list[Lap]:
        """The laps still waiting for the source's lap time, as they are (the data has ended)."""
        for waiting in self._waiting:
            waiting.settled = True
        return self._release(np.inf)

    # -- samples --------------------------------------------------------------------------------------------

    def _chunk(self, columns: Mapping[str, Iterable[float | int | None]]) -> _Chunk | None:
        if "t" not in columns:
            raise MissingChannels("lap detection needs the t channel")
        t = np.asarray(columns["t"], dtype=np.float64)
        if t.ndim != 1:
            raise RaggedChunk("t must be a list of numbers")
        arrays: dict[str, FloatArray] = {}
        for name in LAP_CHANNELS[1:]:
            values = columns.get(name)
            array = np.full(t.shape, np.nan) if values is None else np.asarray(values, dtype=np.float64)
            if array.shape != t.shape:
                raise RaggedChunk(f"t and {name} need the same number of samples")
            arrays[name] = array
        present = ~np.isnan(t)
        t = t[present]
        arrays = {name: values[present] for name, values in arrays.items()}
        if t.size == 0:
            return None
        if self._last_sample is not None:
            t = np.concatenate(([self._last_sample["t"]], t))
            arrays = {
                name: np.concatenate(([self._last_sample[name]], values)) for name, values in arrays.items()
            }
        self._last_sample = {
            "t": float(t[-1]),
            **{name: float(values[-1]) for name, values in arrays.items()},
        }
        chunk = _Chunk(
            t=t,
            pct=arrays["lapDistPct"],
            dist=arrays["lapDist"],
            timer=arrays["lapTime"],
            counter=arrays["lap"],
            last=arrays["lastLapTime"],
            speed=arrays["speed"],
        )
        if self._current is None:
            first_u = self._wraps + chunk.pct[0] if np.isfinite(chunk.pct[0]) else np.nan
            self._current = self._start(chunk.t[0], chunk.counter[0], from_line=False, first_u=first_u)
        return chunk

    def _trace(self, chunk: _Chunk) -> None:
        """Extend the trace of lap position and odometer (samples of the previous chunk are there already)."""
        new = slice(1, None) if self._trace_t.size else slice(0, None)
        dt = np.diff(chunk.t)
        both = chunk.speed[:-1] + chunk.speed[1:]
        step = np.where((dt > 0) & (dt <= self._max_gap_s) & np.isfinite(both), 0.5 * both / 3.6 * dt, 0.0)
        odometer = self._odometer + np.concatenate(([0.0], np.cumsum(step)))
        self._odometer = float(odometer[-1])
        self._trace_t = np.concatenate((self._trace_t, chunk.t[new]))
        self._trace_m = np.concatenate((self._trace_m, odometer[new]))
        # Lap positions u are filled in by `_pairs`, which knows where the line was crossed.
        self._trace_u = np.concatenate((self._trace_u, np.full(chunk.t[new].size, np.nan)))

    # -- pairs of samples -----------------------------------------------------------------------------------

    def _pairs(self, chunk: _Chunk) -> None:
        t, pct, dist, timer, counter = chunk.t, chunk.pct, chunk.dist, chunk.timer, chunk.counter
        dt = np.diff(t)
        on_pct = np.isfinite(pct[:-1]) & np.isfinite(pct[1:])
        on_dist = ~on_pct & np.isfinite(dist[:-1]) & np.isfinite(dist[1:])
        on_timer = ~on_pct & ~on_dist & np.isfinite(timer[:-1]) & np.isfinite(timer[1:])
        on_counter = ~on_pct & ~on_dist & ~on_timer & np.isfinite(counter[:-1]) & np.isfinite(counter[1:])

        raw_step = np.diff(pct)
        step = raw_step - np.rint(np.nan_to_num(raw_step))  # a wrap counted as a small step forward
        pct_wrap = on_pct & (raw_step < -0.5)
        # Forward faster than any car could go, or backwards more than a spin can roll: a reset or a tow.
        pct_jump = on_pct & (
            (step > self._max_rate * np.maximum(dt, 0.0) + self._jump_slack)
            | (step < -self._jump_slack)
            | (raw_step > 0.5)
        )
        dist_step = np.diff(dist)
        dist_wrap = on_dist & (dist[:-1] > 100.0) & (dist[1:] < 0.25 * dist[:-1])
        dist_jump = (
            on_dist
            & ~dist_wrap
            & ((dist_step > MAX_SPEED_MS * np.maximum(dt, 0.0) + 30.0) | (dist_step < -30.0))
        )
        timer_reset = on_timer & (timer[1:] < timer[:-1] - 1.0)
        counter_step = np.diff(counter)
        counter_wrap = on_counter & (counter_step == 1)
        counter_reset = (counter_step < 0) | (counter_step > 1)  # NaN compares false: no counter, no reset
        restart = pct_jump | dist_jump | counter_reset | (dt < 0)
        crossing = ~restart & (pct_wrap | dist_wrap | timer_reset | counter_wrap)
        gap = dt > self._max_gap_s
        last_new = self._source_time_events(chunk.last, first_chunk=self._trace_t.size == t.size)
        shown = np.flatnonzero(np.isfinite(timer) | (np.isfinite(chunk.last) & (chunk.last > 0)))
        source_times_from = (
            int(shown[0]) if shown.size else t.size
        )  # first sample showing the source's timing

        events = np.union1d(np.flatnonzero(restart | crossing | gap), last_new)
        announced = set(last_new.tolist())
        base = self._trace_t.size - t.size  # trace index of chunk sample 0
        self._fill_positions(chunk, base, 0, int(events[0]) + 1 if events.size else t.size)
        for position, index in enumerate(events.tolist()):
            before, after = index, index + 1
            self._settle_before(float(t[after]))
            if after >= source_times_from:
                self._source_times = True
            if restart[index]:
                first_u = self._wraps + pct[after] if np.isfinite(pct[after]) else np.nan
                self._current = self._start(t[after], counter[after], from_line=False, first_u=first_u)
            else:
                assert self._current is not None
                if gap[index]:
                    self._current.reasons.add("time_gap")
                if crossing[index]:
                    self._cross(chunk, before, after, pct_wrap[index])
            if index in announced:
                self._source_time(float(chunk.last[after]), float(t[after]))
            following = int(events[position + 1]) + 1 if position + 1 < events.size else t.size
            self._fill_positions(chunk, base, after, following)
        if source_times_from < t.size:
            self._source_times = True
        assert self._current is not None
        self._forget_before(self._current.t_start)

    def _source_time_events(self, last: FloatArray, first_chunk: bool) -> npt.NDArray[np.intp]:
        """Indices of the pairs whose second sample shows a new lap time from the source."""
        if first_chunk and np.isfinite(last[0]):
            self._last_value = float(last[0])  # a time shown from the start is an earlier lap's, not news
        # The value known before each sample, carried over samples that miss it.
        known = _forward_fill(np.concatenate(([self._last_value], last[1:])))
        values = last[1:]
        fresh = np.isfinite(values) & (values > 0) & (values != known[:-1])
        if np.isfinite(known[-1]):
            self._last_value = float(known[-1])
        return np.flatnonzero(fresh)

    def _fill_positions(self, chunk: _Chunk, base: int, start: int, stop: int) -> None:
        """Lap positions u = wraps + lapDistPct of chunk samples start..stop-1 (after the crossings before)."""
        if stop <= start:
            return
        values = self._wraps + chunk.pct[start:stop]
        self._trace_u[base + start : base + stop] = values

    def _cross(self, chunk: _Chunk, before: int, after: int, on_pct: bool) -> None:
        t, pct = chunk.t, chunk.pct
        current = self._current
        assert current is not None
        crossing = float(t[after])
        if on_pct:
            crossing = _crossing_time(t[before], t[after], pct[before], pct[after] + 1.0, 1.0)
        elif np.isfinite(chunk.dist[before]) and np.isfinite(chunk.dist[after]):
            length = self._reference_length
            remaining = max(length - chunk.dist[before], 0.0) if length else 0.0
            crossing = _crossing_time(t[before], t[after], 0.0, remaining + chunk.dist[after], remaining)
        elif np.isfinite(chunk.counter[before]) and np.isfinite(chunk.counter[after]):
            crossing = float(t[before] + 0.5 * (t[after] - t[before]))
        timer = chunk.timer[after]
        if (
            np.isfinite(timer)
            and 0.0 <= timer <= TIMER_FRESH_S
            and t[after] - timer >= t[before] - TIMER_FRESH_S
        ):
            crossing = float(t[after] - timer)  # the source's own clock dates the line
        crossing = min(max(crossing, current.t_start), float(t[after]))
        if on_pct:
            self._wraps += 1
        length_at_line = None
        if on_pct and np.isfinite(chunk.dist[before]) and pct[before] >= 0.9:
            length_at_line = float(chunk.dist[before] / pct[before])
        lap = self._finish(current, crossing, chunk.counter[before], length_at_line)
        self._waiting.append(_Waiting(lap, settled=not self._source_times))
        first_u = float(self._wraps) if on_pct else np.nan
        self._current = self._start(crossing, chunk.counter[after], from_line=True, first_u=first_u)

    def _start(self, t: float, lap: float, *, from_line: bool, first_u: float) -> _LapInProgress:
        number = None if np.isnan(lap) else int(lap)
        return _LapInProgress(number, float(t), from_line, float(first_u))

    def _forget_before(self, t_start: float) -> None:
        """Drop the trace before a lap's start, keeping the sample before it for interpolation."""
        keep = max(int(np.searchsorted(self._trace_t, t_start, side="right")) - 1, 0)
        self._trace_t = self._trace_t[keep:]
        self._trace_u = self._trace_u[keep:]
        self._trace_m = self._trace_m[keep:]

    # -- completing a lap -----------------------------------------------------------------------------------

    def _finish(
        self, current: _LapInProgress, t_end: float, lap_before: float, length_at_line: float | None
    ) -> Lap:
        reasons = set(current.reasons)
        if not current.from_line:
            reasons.add("started_mid_lap")
        inside = (self._trace_t > current.t_start) & (self._trace_t < t_end)
        lap_t = np.concatenate(([current.t_start], self._trace_t[inside], [t_end]))
        odometer = np.interp(lap_t, self._trace_t, self._trace_m) if self._trace_t.size else np.zeros(2)
        driven = float(odometer[-1] - odometer[0])
        u_end = float(self._wraps)  # crossings on lapDistPct have been counted by now
        has_u = np.isfinite(current.first_u)
        coverage: float | None = None
        positions: FloatArray | None = None
        if has_u:
            u = self._trace_u[inside]
            positions = np.maximum.accumulate(
                np.nan_to_num(np.concatenate(([current.first_u], u, [u_end])), nan=current.first_u)
            )
            coverage = u_end - current.first_u
        length: float | None
        if driven > 0 and has_u and coverage is not None and coverage >= 0.5:
            length = length_at_line or driven / coverage
        elif driven > 0 and current.from_line:
            length = length_at_line or driven
        else:
            length = length_at_line
        if coverage is None and length is not None and self._reference_length:
            coverage = driven / self._reference_length if driven > 0 else None
        if coverage is not None and coverage < self._min_coverage:
            reasons.add("short")
        if current.from_line and length is not None:
            self._reference_length = length
        number = current.number if np.isnan(lap_before) else int(lap_before)
        if number is None or number < self._counted:
            number = self._counted
        self._counted = number + 1
        marks = self._split_times(current, lap_t, positions, odometer, length)
        start_mark: float | None = current.t_start if current.from_line else None
        edges: list[float | None] = [start_mark, *marks, t_end]
        sectors = tuple(
            None if start is None or end is None else end - start
            for start, end in zip(edges[:-1], edges[1:], strict=True)
        )
        return Lap(
            number=number,
            t_start=current.t_start,
            t_end=t_end,
            lap_time=t_end - current.t_start,
            sectors=sectors,
            valid=not reasons,
            invalid_reasons=tuple(sorted(reasons)),
            length_m=length,
        )

    def _split_times(
        self,
        current: _LapInProgress,
        lap_t: FloatArray,
        positions: FloatArray | None,
        odometer: FloatArray,
        length: float | None,
    ) -> list[float | None]:
        """When the lap passed each split: by lap position, else by distance driven along a known length."""
        if positions is not None:
            start = positions[-1] - 1.0
            targets = [start + split for split in self._splits]
            return [
                float(np.interp(target, positions, lap_t)) if target > positions[0] else None
                for target in targets
            ]
        if length is None or odometer[-1] <= odometer[0]:
            return [None] * len(self._splits)
        start = odometer[-1] - length
        metres = np.maximum.accumulate(odometer)
        return [
            float(np.interp(start + split * length, metres, lap_t))
            if current.from_line or start + split * length > metres[0]
            else None
            for split in self._splits
        ]

    # -- the source's own lap time --------------------------------------------------------------------------

    def _source_time(self, value: float, at: float) -> None:
        """A new lap time from the source at time `at`: it belongs to the last lap completed before then."""
        self._source_times = True
        before = [waiting for waiting in self._waiting if waiting.lap.t_end <= at]
        if before and not before[-1].settled:
            before[-1].source_time = value
        for waiting in self._waiting:
            if waiting.lap.t_end <= at:
                waiting.settled = True

    def _settle_before(self, now: float) -> None:
        for waiting in self._waiting:
            if now > waiting.lap.t_end + SETTLE_S:
                waiting.settled = True

    def _release(self, now: float) -> list[Lap]:
        self._settle_before(now)
        released = []
        while self._waiting and self._waiting[0].settled:
            waiting = self._waiting.pop(0)
            released.append(_timed_by_source(waiting.lap, waiting.source_time))
        return released


def _timed_by_source(lap: Lap, source_time: float | None) -> Lap:
    """The lap with the source's own time where it agrees with what the samples saw."""
    if source_time is None:
        return lap
    if "started_mid_lap" in lap.invalid_reasons:
        if source_time < lap.lap_time - SOURCE_TIME_SLACK * lap.lap_time:
            return lap  # the lap lasted at least as long as we watched it
        return replace(lap, t_start=lap.t_end - source_time, lap_time=source_time)
    if abs(source_time - lap.lap_time) > max(0.5, SOURCE_TIME_SLACK * lap.lap_time):
        return lap
    sectors = lap.sectors
    if sectors and all(sector is not None for sector in sectors[:-1]):
        closed = source_time - sum(sector for sector in sectors[:-1] if sector is not None)
        sectors = (*sectors[:-1], closed)
    return replace(lap, lap_time=source_time, sectors=sectors)


def _forward_fill(values: FloatArray) -> FloatArray:
    """Each NaN replaced by the last finite value before it (NaN while there is none)."""
    index = np.where(np.isfinite(values), np.arange(values.size), 0)
    np.maximum.accumulate(index, out=index)
    filled = values[index]
    filled[~np.isfinite(values[index])] = np.nan
    return filled


def detect_laps(
    columns: Mapping[str, Iterable[float | int | None]], *, splits: Sequence[float] = DEFAULT_SPLITS
) -> list[Lap]:
    """All laps completed in a whole session's columns (`t` and any of LAP_CHANNELS)."""
    if not any(name in columns for name in LAP_SIGNALS):
        raise MissingChannels("lap detection needs lapDistPct, lapDist, lapTime, lap or lastLapTime")
    detector = LapDetector(splits=splits)
    return detector.feed(columns) + detector.finish()


def _crossing_time(t0: float, t1: float, p0: float, p1: float, target: float) -> float:
    """Time at which position `target` was passed between (t0, p0) and (t1, p1), linearly interpolated."""
    if p1 <= p0:
        return float(t1)
    fraction = min(max((target - p0) / (p1 - p0), 0.0), 1.0)
    return float(t0 + fraction * (t1 - t0))


def measured_track_length(columns: Mapping[str, Iterable[float | int | None]]) -> float | None:
    """The lap length (m) the data itself shows: lap distance over lap fraction where both are given, else
    the distance driven (integrated speed) per lap fraction covered, else the median length of the laps
    driven line to line; None when the data cannot tell."""
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
    if pct is None and any(name in columns for name in LAP_SIGNALS):
        lengths = [lap.length_m for lap in detect_laps(columns) if lap.valid and lap.length_m is not None]
        if lengths:
            return float(np.median(lengths))
    return None


def _column(columns: Mapping[str, Iterable[float | int | None]], name: str) -> FloatArray | None:
    if name not in columns:
        return None
    values = np.asarray(columns[name], dtype=np.float64)
    return values if np.isfinite(values).any() else None
