"""The cue tests' circuit, built here with numpy so every truth is known by construction.

A 2 km loop with three corners. The car is at its top speed between corners, brakes at a constant
deceleration to each corner's apex speed and accelerates at a constant rate out of it, so a lap's speed at
any lap distance is the lowest of those envelopes. "Braking early" by X metres at a corner starts the same
braking X metres sooner and holds the apex speed over those X metres. The brake point of each lap, its speed
there and the time it takes to any lap distance (the integral of ds / v) are therefore exact numbers of this
module, never read back from the server.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from tests.conftest import RunningServer, make_settings, run_server

FloatArray = npt.NDArray[np.float64]

LENGTH = 2000.0
TOP_KMH = 220.0
BRAKING = 11.0  # m/s²
ACCELERATION = 5.0  # m/s²
#: (apex lap distance in metres, apex speed in km/h) of Turn 1, 2, 3 as the analyst numbers them from the line.
CORNERS = ((420.0, 85.0), (1050.0, 115.0), (1560.0, 75.0))
STEP = 0.05  # metres of the fine grid each lap is built on
HZ = 60.0


@dataclass(frozen=True)
class LapPlan:
    """How one lap is driven: metres braked early at each corner (by index), and where flags and the pit lane
    show (lap-distance ranges in metres)."""

    early: dict[int, float] = field(default_factory=dict)
    yellow: tuple[float, float] | None = None
    pit: tuple[float, float] | None = None


def brake_point(corner: int, early: float = 0.0) -> float:
    """Where a lap starts braking for `corner` (metres from the line)."""
    apex, kmh = CORNERS[corner]
    top, slow = TOP_KMH / 3.6, kmh / 3.6
    return apex - early - (top**2 - slow**2) / (2 * BRAKING)


def speed_profile(plan: LapPlan) -> tuple[FloatArray, FloatArray]:
    """(metres, m/s) of a lap on the fine grid, 0 to LENGTH inclusive."""
    s = np.arange(0.0, LENGTH + STEP / 2, STEP)
    v = np.full(s.size, TOP_KMH / 3.6)
    for index, (apex, kmh) in enumerate(CORNERS):
        slow = kmh / 3.6
        early = plan.early.get(index, 0.0)
        offset = (s - apex + LENGTH / 2) % LENGTH - LENGTH / 2  # metres past the apex, -L/2..L/2
        before = np.maximum(-offset - early, 0.0)
        braking = np.sqrt(slow**2 + 2 * BRAKING * before)
        accelerating = np.sqrt(slow**2 + 2 * ACCELERATION * np.maximum(offset, 0.0))
        v = np.minimum(v, np.where(offset <= 0, braking, accelerating))
    return s, v


def elapsed(plan: LapPlan, metres: float) -> float:
    """Seconds from the line to `metres` for a lap driven so."""
    s, v = speed_profile(plan)
    times = np.concatenate(([0.0], np.cumsum(np.diff(s) / (0.5 * (v[1:] + v[:-1])))))
    return float(np.interp(metres, s, times))


def time_lost(plan: LapPlan, reference: LapPlan, start: float, end: float) -> float:
    """Growth of lap-minus-reference time from `start` to `end` metres."""
    return (elapsed(plan, end) - elapsed(reference, end)) - (elapsed(plan, start) - elapsed(reference, start))


@dataclass
class Stream:
    """The samples of a session: an out-lap from 90 % of the lap, then the planned laps, then 5 s more."""

    columns: dict[str, FloatArray]
    line_times: list[float]  # session time of each crossing of the line: the start of lap 1, 2, …

    def until(self, t_end: float, t_start: float = -1.0) -> dict[str, list[float]]:
        """The samples with t_start < t <= t_end, as JSON columns."""
        chosen = (self.columns["t"] > t_start) & (self.columns["t"] <= t_end)
        return {name: [float(v) for v in values[chosen]] for name, values in self.columns.items()}

    def position_at(self, t: float) -> float:
        """The lap distance of the sample at session time `t`."""
        index = int(np.argmin(np.abs(self.columns["t"] - t)))
        return float(self.columns["lapDist"][index])


def stream(laps: list[LapPlan]) -> Stream:
    """Samples at 60 Hz of an out-lap (from 90 % of the lap, driven like lap 1), the laps, and 5 s of the next."""
    pieces_s, pieces_v, pieces_lap, pieces_yellow, pieces_pit, pieces_brake = [], [], [], [], [], []
    for number, plan in enumerate([laps[0], *laps, LapPlan()]):
        s, v = speed_profile(plan)
        braking = np.concatenate(([False], np.diff(v) < -1e-9))
        yellow = np.zeros(s.size, dtype=bool)
        pit = np.zeros(s.size, dtype=bool)
        if plan.yellow is not None:
            yellow = (s >= plan.yellow[0]) & (s <= plan.yellow[1])
        if plan.pit is not None:
            pit = (s >= plan.pit[0]) & (s <= plan.pit[1])
        keep = (s < LENGTH) & (s >= (0.9 * LENGTH if number == 0 else 0.0))
        pieces_s.append(s[keep] + (number - 1) * LENGTH)
        pieces_v.append(v[keep])
        pieces_lap.append(np.full(int(keep.sum()), float(number)))
        pieces_yellow.append(yellow[keep])
        pieces_pit.append(pit[keep])
        pieces_brake.append(braking[keep])
    s_all = np.concatenate(pieces_s)
    v_all = np.concatenate(pieces_v)
    times = np.concatenate(([0.0], np.cumsum(np.diff(s_all) / (0.5 * (v_all[1:] + v_all[:-1])))))
    line_times = [float(np.interp(k * LENGTH, s_all, times)) for k in range(len(laps) + 1)]
    t = np.arange(0.0, line_times[-1] + 5.0, 1.0 / HZ)
    at = np.interp(t, times, s_all)
    index = np.clip(np.searchsorted(s_all, at), 0, s_all.size - 1)
    lap_distance = np.mod(at, LENGTH)
    speed = np.interp(t, times, v_all) * 3.6
    braking = np.concatenate(pieces_brake)[index]
    angle = 2 * math.pi * lap_distance / LENGTH
    columns = {
        "t": np.round(t, 6),
        "lap": np.concatenate(pieces_lap)[index],
        "lapDistPct": lap_distance / LENGTH,
        "lapDist": lap_distance,
        "speed": speed,
        "throttle": np.where(braking, 0.0, 1.0),
        "brake": np.where(braking, 0.9, 0.0),
        "gear": np.clip(np.ceil(speed / 40.0), 1, 6),
        "x": 320.0 * np.cos(angle),
        "y": 180.0 * np.sin(angle),
        "inPit": np.concatenate(pieces_pit)[index].astype(float),
        "flag": np.where(np.concatenate(pieces_yellow)[index], 3.0, 1.0),
    }
    return Stream(columns, line_times)


@pytest.fixture(scope="session")
async def quiet_cues_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, server: RunningServer
) -> AsyncIterator[RunningServer]:
    """A server that coaches every lap and plans cues but speaks nothing (SPEAK_COACHING off): its cues are
    armed at once, with no audio, so tests of when a cue is said do not wait for speech."""
    settings = make_settings(database_url, tmp_path_factory.mktemp("quiet-cues"), speak_coaching=False)
    async with run_server(settings) as running:
        yield running


@pytest.fixture
async def quiet(quiet_cues_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the quiet server."""
    async with httpx.AsyncClient(base_url=quiet_cues_server.url, timeout=60.0) as client:
        yield client


def session_body(driver_id: str, **fields: Any) -> dict[str, Any]:
    """A session on the synthetic circuit (a track of its own, named per test run)."""
    return {
        "driverId": driver_id,
        "name": "cue practice",
        "trackName": "Cue Ring",
        "trackLengthM": LENGTH,
        "car": "Test car",
        **fields,
    }
