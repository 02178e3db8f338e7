"""Fixtures for the telemetry core: the real iRacing recordings, read into canonical columns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.conftest import SHARED_DATA, missing

LANGLEY = "iracing_ibt/robrobertsce/skmodified_langley 2015-05-28 {}.ibt"

#: iRacing name -> canonical name, for the 40 channels a driver app typically streams.
CHANNELS_40 = {
    "SessionTime": "t",
    "Lap": "lap",
    "LapDistPct": "lapDistPct",
    "LapDist": "lapDist",
    "Speed": "speed",
    "RPM": "rpm",
    "Gear": "gear",
    "Throttle": "throttle",
    "Brake": "brake",
    "SteeringWheelAngle": "steering",
    "Lat": "lat",
    "Lon": "lon",
    "Alt": "z",
    "Clutch": "clutch",
    "LongAccel": "longAccel",
    "LatAccel": "latAccel",
    "VertAccel": "vertAccel",
    "Yaw": "yaw",
    "Pitch": "pitch",
    "Roll": "roll",
    "YawRate": "yawRate",
    "PitchRate": "pitchRate",
    "RollRate": "rollRate",
    "VelocityX": "velocityX",
    "VelocityY": "velocityY",
    "VelocityZ": "velocityZ",
    "FuelLevel": "fuelLevel",
    "WaterTemp": "waterTemp",
    "OilTemp": "oilTemp",
    "OilPress": "oilPress",
    "ManifoldPress": "manifoldPress",
    "LFspeed": "wheelSpeedFL",
    "RFspeed": "wheelSpeedFR",
    "LRspeed": "wheelSpeedRL",
    "RRspeed": "wheelSpeedRR",
    "LFshockDefl": "shockFL",
    "RFshockDefl": "shockFR",
    "LRshockDefl": "shockRL",
    "RRshockDefl": "shockRR",
    "OnPitRoad": "onPitRoad",
}

Columns = dict[str, npt.NDArray[np.float64]]


def read_ibt(path: Path, *, all_channels: bool = False) -> Columns:
    """Columns of an .ibt file: the 40 common channels renamed (speed in km/h), or every scalar channel."""
    import irsdk

    ibt = irsdk.IBT()
    ibt.open(str(path))
    try:
        names = ibt.var_headers_names if all_channels else list(CHANNELS_40)
        columns: Columns = {}
        for name in names:
            values = np.asarray(ibt.get_all(name), dtype=np.float64)
            if values.ndim != 1:
                continue
            key = name if all_channels else CHANNELS_40[name]
            columns[key] = values * 3.6 if key == "speed" else values
        if all_channels:
            columns["t"] = columns["SessionTime"]
            columns["lapDistPct"] = columns["LapDistPct"]
        return columns
    finally:
        ibt.close()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real recordings; tests that need it stop where it is absent (`missing`)."""
    if not SHARED_DATA.is_dir():
        missing(f"real recordings are missing at {SHARED_DATA.resolve()} (shared/data beside the checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def langley(data_dir: Path) -> Callable[[str], Columns]:
    """Reads one Langley recording by its time stamp ("14-46-23"), 40 canonical channels plus LapLastLapTime."""
    cache: dict[str, Columns] = {}

    def read(stamp: str) -> Columns:
        if stamp not in cache:
            path = data_dir / LANGLEY.format(stamp)
            columns = read_ibt(path)
            import irsdk

            ibt = irsdk.IBT()
            ibt.open(str(path))
            columns["LapLastLapTime"] = np.asarray(ibt.get_all("LapLastLapTime"), dtype=np.float64)
            ibt.close()
            cache[stamp] = columns
        return cache[stamp]

    return read


@pytest.fixture(scope="session")
def langley_all_channels(data_dir: Path) -> Columns:
    """Every scalar channel of the 14-46-23 recording, under iRacing's names."""
    return read_ibt(data_dir / LANGLEY.format("14-46-23"), all_channels=True)
