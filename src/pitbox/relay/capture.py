"""Captures of raw datagrams: `<name>.raw` (the datagrams end to end) and `<name>.timing.csv` beside it.

The timing file's columns are `index, capture_clock, delta_s, length, raw_offset` (../shared/data's
README): datagram i is `raw[raw_offset : raw_offset + length]`, received `delta_s` after the one before;
`capture_clock` is seconds since the first datagram in captures written here.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pitbox.errors import Invalid
from pitbox.recordings.errors import CorruptRecording, MissingTiming

__all__ = ["CaptureWriter", "Datagram", "read_capture", "timing_path_of"]


@dataclass(frozen=True, slots=True)
class Datagram:
    """One captured datagram and the seconds since the one before it."""

    delta_s: float
    payload: bytes


def timing_path_of(raw_path: Path) -> Path:
    """`x.raw` and `x.bin.raw` -> `x.timing.csv`, as the captures in ../shared/data are named."""
    stem = raw_path.name.removesuffix(".raw").removesuffix(".bin")
    return raw_path.with_name(f"{stem}.timing.csv")


def read_capture(raw_path: Path) -> list[Datagram]:
    """Every datagram of a capture, in order; Invalid when the files are missing or do not agree."""
    timing = timing_path_of(raw_path)
    if not raw_path.is_file() or not timing.is_file():
        raise MissingTiming(f"{raw_path.name} needs {timing.name} beside it")
    data = raw_path.read_bytes()
    datagrams = []
    try:
        with timing.open(newline="") as handle:
            for row in csv.DictReader(handle):
                offset, length = int(row["raw_offset"]), int(row["length"])
                if offset < 0 or length < 0 or offset + length > len(data):
                    raise Invalid(
                        f"{timing.name}: datagram {row['index']} runs past the end of {raw_path.name}"
                    )
                datagrams.append(Datagram(max(float(row["delta_s"]), 0.0), data[offset : offset + length]))
    except (KeyError, ValueError) as error:
        raise CorruptRecording(f"{timing.name} is not a capture timing file: {error}") from None
    return datagrams


class CaptureWriter:
    """Appends datagrams to a capture as they arrive (`--record FILE`); flushed every `flush_every` datagrams."""

    def __init__(self, raw_path: Path, *, flush_every: int = 60) -> None:
        if raw_path.suffix != ".raw":
            raw_path = raw_path.with_name(raw_path.name + ".raw")
        self.path = raw_path
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = raw_path.open("wb")
        self._timing: TextIO = timing_path_of(raw_path).open("w", newline="", encoding="utf-8")
        self._timing.write("index,capture_clock,delta_s,length,raw_offset\n")
        self._index = 0
        self._offset = 0
        self._first: float | None = None
        self._last = 0.0
        self._flush_every = flush_every
        self._rows = io.StringIO()

    def write(self, payload: bytes, received_at: float) -> None:
        """Record one datagram received at `received_at` (seconds, any monotonic clock)."""
        if self._first is None:
            self._first = self._last = received_at
        delta = received_at - self._last
        self._last = received_at
        self._raw.write(payload)
        self._rows.write(
            f"{self._index},{received_at - self._first:.6f},{delta:.6f},{len(payload)},{self._offset}\n"
        )
        self._index += 1
        self._offset += len(payload)
        if self._index % self._flush_every == 0:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered to disk."""
        self._raw.flush()
        self._timing.write(self._rows.getvalue())
        self._rows = io.StringIO()
        self._timing.flush()

    def close(self) -> None:
        """Flush and close both files."""
        self.flush()
        self._raw.close()
        self._timing.close()
