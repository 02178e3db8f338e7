"""The coaching tests' laps: real laps from ../shared/data, cut line to line, with their lap records."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from pitbox.recordings import open_recording
from pitbox.telemetry.compare import lap_samples
from pitbox.telemetry.laps import Lap, detect_laps
from tests.conftest import shared_data

FloatArray = npt.NDArray[np.float64]
Columns = dict[str, FloatArray]

LANGLEY = "iracing_ibt/robrobertsce/skmodified_langley 2015-05-28 {}.ibt"
COACHED_CHANNELS = ("t", "lap", "lapDistPct", "lapDist", "speed", "throttle", "brake", "gear", "steering")


@dataclass(frozen=True)
class RealLaps:
    """Valid laps of one car on one track: each lap's record and its samples line to line."""

    track: str
    laps: list[tuple[Lap, Columns]]
    track_length: float | None = None

    @property
    def best(self) -> tuple[Lap, Columns]:
        """The fastest lap: the default reference."""
        return min(self.laps, key=lambda pair: pair[0].lap_time)

    @property
    def others(self) -> list[tuple[Lap, Columns]]:
        """Every lap but the fastest."""
        best = self.best[0]
        return [pair for pair in self.laps if pair[0] is not best]


def valid_laps(columns: Columns) -> list[tuple[Lap, Columns]]:
    """The valid laps of a session's columns."""
    return [(lap, lap_samples(columns, lap)) for lap in detect_laps(columns) if lap.valid]


@pytest.fixture(scope="session")
def langley() -> RealLaps:
    """Six valid laps of an SK Modified at Langley Speedway (iRacing, 60 Hz), from three recordings."""
    laps: list[tuple[Lap, Columns]] = []
    for stamp in ("14-46-23", "14-48-39", "14-50-46"):
        recording = open_recording(shared_data(LANGLEY.format(stamp)))
        columns = {name: np.asarray(recording.channels[name], dtype=np.float64) for name in COACHED_CHANNELS}
        laps += valid_laps(columns)
    return RealLaps("Langley Speedway", laps)


@pytest.fixture(scope="session")
def calder() -> RealLaps:
    """Three timed laps of a real car at Calder Park (MoTeC, 20 Hz), positioned by integrating its speed.

    The logger's lap distance is held for a second before each beacon, so lap position is rebuilt the way
    MoTeC i2 does: distance from the speed, crossings from the lap timer, each lap scaled to the track length.
    """
    recording = open_recording(shared_data("motec_ld/Sample1.ld"))
    raw = recording.channels
    t = np.asarray(raw["t"], dtype=np.float64)
    speed = np.asarray(raw["speed"], dtype=np.float64)
    lap_timer = np.asarray(raw["lapTime"], dtype=np.float64)
    resets = np.flatnonzero(np.diff(lap_timer) < -10.0) + 1
    crossings = t[resets] - lap_timer[resets]
    driven = np.concatenate(([0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) / 3.6 * np.diff(t))))
    at_crossing = np.interp(crossings, t, driven)
    track_length = float(np.mean(np.diff(at_crossing)))
    fraction = np.full(t.size, np.nan)
    for start, end, d_start, d_end in zip(
        crossings[:-1], crossings[1:], at_crossing[:-1], at_crossing[1:], strict=True
    ):
        inside = (t >= start) & (t < end)
        fraction[inside] = (driven[inside] - d_start) / (d_end - d_start)
    before = (t < crossings[0]) & (driven > at_crossing[0] - track_length)
    fraction[before] = 1.0 + (driven[before] - at_crossing[0]) / track_length
    after = (t >= crossings[-1]) & (driven < at_crossing[-1] + track_length)
    fraction[after] = (driven[after] - at_crossing[-1]) / track_length
    pressure = np.asarray(raw["Brake Pres Front"], dtype=np.float64)
    columns: Columns = {
        "t": t,
        "lapDistPct": fraction,
        "speed": speed,
        "throttle": np.asarray(raw["throttle"], dtype=np.float64),
        "brake": np.clip(pressure / np.nanmax(pressure), 0.0, 1.0),
        "gear": np.asarray(raw["gear"], dtype=np.float64),
        "steering": np.asarray(raw["steering"], dtype=np.float64),
    }
    return RealLaps("Calder Park", valid_laps(columns), track_length)
