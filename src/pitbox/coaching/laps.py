"""Laps for coaching: a stored lap's samples read back from the telemetry chunks, or a lap sent inline.

`StoredLaps` reads through the telemetry package's public store and reader (the same steps as the telemetry
service's lap comparison), so coaching never decodes chunks itself.
"""

from __future__ import annotations

import math
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from pitbox.coaching.errors import InvalidLap, LapNotFound, MissingField
from pitbox.errors import Invalid
from pitbox.telemetry import store as telemetry_store
from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.compare import lap_length, lap_samples, with_lap_position
from pitbox.telemetry.errors import LapTooShort, MissingChannels, RaggedChunk, TooManySamples
from pitbox.telemetry.lap_reads import lap_from_row
from pitbox.telemetry.laps import LAP_SIGNALS, Lap, detect_laps
from pitbox.telemetry.reader import Selection, read_blocks

FloatArray = npt.NDArray[np.float64]

#: Channels the analyst reads (plus position, time and what lap detection reads).
COACHING_CHANNELS = (
    "t",
    "lap",
    "lapDistPct",
    "lapDist",
    "speed",
    "throttle",
    "brake",
    "brakePressure",
    "gear",
    "steering",
    "rpm",
    "gLat",
    "gLong",
    "x",
    "y",
    "lat",
    "lon",
)
MAX_INLINE_SAMPLES = 200_000
MAX_LAP_NUMBER = 1_000_000
#: The longest lap time a request may state (s): a day.
MAX_LAP_TIME_S = 86_400.0


@dataclass(frozen=True, slots=True)
class LapData:
    """One lap's samples (line to line, one sample beyond each end) with its number, time and validity."""

    columns: dict[str, FloatArray]
    number: int | None
    lap_time: float | None
    valid: bool
    invalid_reasons: tuple[str, ...]
    length_m: float | None = None
    t_start: float | None = None  # session time of a stored lap's start; None for a lap sent inline
    t_end: float | None = None  # and of its end
    session_id: uuid.UUID | None = None  # the session of a stored lap; None for a lap sent inline


class StoredLaps:
    """Reads stored laps of a session; holds its own chunk codec."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._codec = ChunkCodec()

    async def lap(self, session_id: uuid.UUID, lap_number: int) -> LapData:
        """Lap `lap_number` of a session with the coaching channels; NotFound when the lap is not stored."""
        row = await telemetry_store.lap_of_session(self._pool, session_id, lap_number)
        if row is None:
            raise LapNotFound(f"lap {lap_number} of this session not found")
        # One second either side: the samples around the line crossings that interpolation needs.
        selection = Selection(t_from=row["t_start"] - 1.0, t_to=row["t_end"] + 1.0)
        names = list(COACHING_CHANNELS)
        blocks = [
            block.columns
            async for block in read_blocks(self._pool, self._codec, session_id, names, selection)
        ]
        columns = {
            name: np.concatenate([block[index] for block in blocks]) if blocks else np.empty(0)
            for index, name in enumerate(names)
        }
        columns = {
            name: values for name, values in columns.items() if values.size and not np.isnan(values).all()
        }
        lap = lap_from_row(row)
        if "t" not in columns or columns["t"].size < 2:
            raise LapTooShort(f"lap {lap_number} has no stored samples")
        samples = lap_samples(columns, lap)
        return LapData(
            samples,
            lap.number,
            lap.lap_time,
            lap.valid,
            lap.invalid_reasons,
            lap.length_m or lap_length(samples),
            lap.t_start,
            lap.t_end,
            session_id,
        )


def inline_lap(data: Mapping[str, Any], field: str) -> LapData:
    """A lap sent in a request: `columns` ({channel: [values]}) or `samples` ([{channel: value}]), cut from
    line to line by the client (with a sample or more beyond each end).

    Lap detection runs over the samples. A lap it dates before the first sample (a logger that notices the
    line late dates it back by its lap timer) is not in the data and is left out. The longest lap inside the
    data that starts and ends at a line crossing is coached, with its detected validity; without one, the
    longest of what remains: a lap started mid-lap (invalid, as detected) or the samples from the last line
    crossing seen (else the first sample) to the end, taken as one lap from line to line. `field` names the
    request part.
    """
    columns = _columns_of(data, field)
    if "t" not in columns:
        raise MissingChannels(f"{field} needs the t channel", details=[{"field": field}])
    if not any(name in columns for name in ("lapDistPct", "lapDist", "speed")):
        raise MissingChannels(f"{field} needs lapDistPct, lapDist or speed", details=[{"field": field}])
    number = lap_number(data.get("lapNumber"), f"{field}.lapNumber")
    lap_time = _lap_time(data.get("lapTime"), f"{field}.lapTime")
    valid = data.get("valid", True)
    if not isinstance(valid, bool):
        raise Invalid(f"{field}.valid must be true or false", details=[{"field": f"{field}.valid"}])
    t = columns["t"][np.isfinite(columns["t"])]
    laps: list[Lap] = detect_laps(columns) if any(name in columns for name in LAP_SIGNALS) else []
    lap = _lap_inside(laps, float(t[0]), float(t[-1])) if t.size >= 2 else None
    if lap is not None:
        samples = lap_samples(columns, lap)
        return LapData(
            samples,
            lap.number if number is None else number,
            lap.lap_time,
            lap.valid,
            lap.invalid_reasons,
            lap.length_m or lap_length(samples),
        )
    if t.size >= 2:
        start = max(laps[-1].t_end, float(t[0])) if laps else float(t[0])
        first = max(int(np.searchsorted(columns["t"], start, side="right")) - 1, 0)
        samples = with_lap_position(
            {name: values[first:] for name, values in columns.items()}, start, float(t[-1])
        )
    else:
        samples = columns
    return LapData(
        samples,
        number,
        lap_time,
        valid,
        () if valid else ("reported_invalid",),
        lap_length(samples),
    )


def lap_number(value: Any, field: str) -> int | None:
    """A lap number from a request (None when absent); 422 naming `field` for anything but a whole number from
    0 to MAX_LAP_NUMBER (a boolean is not a number)."""
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_LAP_NUMBER:
        raise InvalidLap(f"{field} must be a lap number", details=[{"field": field}])
    return value


def _lap_time(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not 0 < value <= MAX_LAP_TIME_S:
        raise Invalid(
            f"{field} must be a lap time in seconds (0 to {MAX_LAP_TIME_S:.0f})",
            details=[{"field": field}],
        )
    return float(value)


def _lap_inside(laps: list[Lap], first: float, last: float) -> Lap | None:
    """The longest lap from line to line inside [first, last]; else the longest lap started mid-lap inside it
    when it is longer than the samples after the last crossing; else None (those samples are the lap)."""
    inside = [lap for lap in laps if lap.t_start >= first]
    complete = [lap for lap in inside if "started_mid_lap" not in lap.invalid_reasons]
    if complete:
        return max(complete, key=lambda lap: lap.t_end - lap.t_start)
    tail = last - max(laps[-1].t_end, first) if laps else last - first
    partial = max(inside, key=lambda lap: lap.t_end - lap.t_start, default=None)
    return partial if partial is not None and partial.t_end - partial.t_start > tail else None


def _columns_of(data: Mapping[str, Any], field: str) -> dict[str, FloatArray]:
    raw_columns = data.get("columns")
    raw_samples = data.get("samples")
    if isinstance(raw_columns, dict):
        columns = {}
        size = None
        for name, values in raw_columns.items():
            if not isinstance(values, list):
                raise Invalid(
                    f"{field}.columns.{name} must be a list", details=[{"field": f"{field}.columns.{name}"}]
                )
            columns[str(name)] = _numbers(values, f"{field}.columns.{name}")
            if size is not None and columns[str(name)].size != size:
                raise RaggedChunk(
                    f"{field}.columns must all have the same length",
                    details=[{"field": f"{field}.columns"}],
                )
            size = columns[str(name)].size
    elif isinstance(raw_samples, list):
        if not all(isinstance(sample, dict) for sample in raw_samples):
            raise Invalid(
                f"{field}.samples must be a list of objects", details=[{"field": f"{field}.samples"}]
            )
        names = list(dict.fromkeys(name for sample in raw_samples for name in sample))
        columns = {
            str(name): _numbers([sample.get(name) for sample in raw_samples], f"{field}.samples.{name}")
            for name in names
        }
    else:
        raise MissingField(
            f"{field} needs `columns`, `samples`, or a `lap` number",
            details=[{"field": field}],
        )
    if next(iter(columns.values()), np.empty(0)).size > MAX_INLINE_SAMPLES:
        raise TooManySamples(f"{field} holds too many samples", details=[{"field": field}])
    return columns


def _numbers(values: list[Any], field: str) -> FloatArray:
    """JSON numbers (null: no value) as floats; 422 naming the field for anything else: a boolean, a text, or a
    number float64 cannot hold (the body check refuses NaN, Infinity and 1e400 before this)."""
    for value in values:
        if value is None or (type(value) is float and math.isfinite(value)):
            continue
        if type(value) is int and abs(value) <= sys.float_info.max:
            continue
        raise Invalid(
            f"{field} must hold numbers (or null)",
            details=[{"field": field, "message": f"{str(value)[:40]} is not a finite number"}],
        )
    return np.asarray([np.nan if value is None else value for value in values], dtype=np.float64)
