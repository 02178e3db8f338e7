"""Recordings as CSV: a header row of channel names, then one row per sample (layout in docs/telemetry.md).

Columns may be canonical names or any known alias; aliases are only renamed, so every value must already
be in the canonical unit. A `t` column (seconds) is required. Unknown columns are kept under their own
name. An empty cell is a missing value.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pitbox.errors import Invalid
from pitbox.recordings.errors import CorruptRecording, InvalidTime, RecordingWithoutTime
from pitbox.recordings.models import Recording
from pitbox.telemetry.aliases import canonical_name
from pitbox.telemetry.catalogue import CATALOGUE

SOURCE = "csv"


def read_csv(path: Path, source: str | None = None) -> Recording:
    """The recording in a CSV file; `source` (e.g. "iracing") picks which alias table renames the columns."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = list(reader)
    except UnicodeDecodeError as error:
        raise CorruptRecording(f"{path.name} is not a UTF-8 CSV file") from error
    if not header:
        raise CorruptRecording(f"{path.name} has no header row")
    names = [canonical_name(column.strip(), source) for column in header]
    if "t" not in names:
        raise RecordingWithoutTime(
            f"{path.name} has no `t` column (seconds)",
            details={"columns": header},
        )
    if len(set(names)) != len(names):
        raise Invalid(f"{path.name} names one channel twice", details={"columns": header})
    bad_rows = [number for number, row in enumerate(rows, start=2) if len(row) != len(names)]
    if bad_rows:
        raise CorruptRecording(f"{path.name}: rows {bad_rows[:5]} do not have {len(names)} cells")
    columns = {name: _column(name, [row[i] for row in rows], path.name) for i, name in enumerate(names)}
    t = np.asarray(columns["t"], dtype=np.float64)
    if len(t) and (np.isnan(t).any() or np.any(np.diff(t) < 0)):
        raise InvalidTime(f"{path.name}: `t` must be present in every row and never decrease")
    columns["t"] = t - t[0] if len(t) else t
    rate = (len(t) - 1) / float(t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
    return Recording(
        source=source or SOURCE,
        sample_rate_hz=rate,
        channels=columns,
        metadata={"t_at_start_s": float(t[0])} if len(t) else {},
    )


def write_csv(recording: Recording, path: Path) -> None:
    """Write a recording in the CSV layout `read_csv` reads; missing values become empty cells."""
    names = list(recording.channels)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        columns = [recording.channels[name].tolist() for name in names]
        for row in zip(*columns, strict=True):
            writer.writerow(["" if isinstance(v, float) and not math.isfinite(v) else repr(v) for v in row])


def _column(name: str, cells: list[str], file_name: str) -> npt.NDArray[Any]:
    try:
        values = np.array([float(cell) if cell.strip() else math.nan for cell in cells], dtype=np.float64)
    except ValueError as error:
        raise CorruptRecording(
            f"{file_name}: column {name!r} holds a value that is not a number: {error}",
        ) from error
    channel = CATALOGUE.get(name)
    if channel is not None and channel.integer:
        integral = not np.isnan(values).any() and bool(np.all(values == np.round(values)))
    else:  # other columns stay integers only when written as integers, so a round trip keeps their type
        integral = bool(cells) and all(cell.strip().lstrip("+-").isdigit() for cell in cells)
    return values.astype(np.int64) if integral else values
