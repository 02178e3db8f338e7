"""The coaching tests' laps and oracles, read and computed here from ../shared/data, never by our own code.

iRacing files are read with pyirsdk; MoTeC's Sample1.ld with the small .ld reader below (the format as the
MIT motec-i2 crate documents it). Laps are cut where the recording itself says the line was crossed
(LapDistPct wrapping; MoTeC's running lap timer restarting) and timed by the recording's own lap time
(LapLastLapTime; MoTeC's "Lap Time"). The oracles (delta growth over a range, brake point, minimum speed,
full-throttle point) are plain numpy over those samples, following the definitions in docs/ai-agent.md.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import irsdk
import numpy as np
import numpy.typing as npt
import pytest

from tests.conftest import RunningServer, make_settings, run_server, shared_data

FloatArray = npt.NDArray[np.float64]
Columns = dict[str, FloatArray]

LANGLEY = "iracing_ibt/robrobertsce/skmodified_langley 2015-05-28 {}.ibt"
LANGLEY_STAMPS = ("14-46-23", "14-48-39", "14-50-46")
CALDER = "motec_ld/Sample1.ld"
#: MoTeC's own lap times of Sample1.ld (the data README), in order.
CALDER_LAP_TIMES = (65.15, 63.68, 65.18, 63.75)


@dataclass(frozen=True)
class RawLap:
    """One timed lap as the recording shows it: its number and time, the line crossings that bound it, and its
    samples (canonical names and units, converted here) from the one before the line to the one after."""

    number: int
    time: float
    t_start: float
    t_end: float
    columns: Columns


@dataclass(frozen=True)
class RealLaps:
    """Timed laps of one car on one track, and the lap length the recording shows (metres)."""

    track: str
    length: float
    laps: list[RawLap]
    sessions: list[Columns] = field(default_factory=list)

    @property
    def best(self) -> RawLap:
        """The fastest lap."""
        return min(self.laps, key=lambda lap: lap.time)

    @property
    def others(self) -> list[RawLap]:
        """Every lap but the fastest."""
        return [lap for lap in self.laps if lap is not self.best]

    def lap(self, number: int) -> RawLap:
        """The lap of this number."""
        return next(lap for lap in self.laps if lap.number == number)


@pytest.fixture(scope="session")
async def quiet_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, server: RunningServer
) -> AsyncIterator[RunningServer]:
    """A second real server on the shared database that coaches every lap but speaks none (SPEAK_COACHING
    off): tests that wait for live coaching of many laps do not wait for speech synthesis too."""
    settings = make_settings(database_url, tmp_path_factory.mktemp("quiet"), speak_coaching=False)
    async with run_server(settings) as running:
        yield running


@pytest.fixture
async def quiet(quiet_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the quiet server."""
    async with httpx.AsyncClient(base_url=quiet_server.url, timeout=60.0) as client:
        yield client


# -- reading ---------------------------------------------------------------------------------------------------


def read_ibt(path: Path) -> dict[str, FloatArray]:
    """The iRacing variables coaching needs, as pyirsdk reads them (no unit conversion)."""
    names = (
        "SessionTime",
        "Lap",
        "LapDistPct",
        "LapDist",
        "Speed",
        "Throttle",
        "Brake",
        "Gear",
        "SteeringWheelAngle",
        "LapLastLapTime",
        "Lat",
        "Lon",
    )
    ibt = irsdk.IBT()
    ibt.open(str(path))
    try:
        return {name: np.asarray(ibt.get_all(name), dtype=np.float64) for name in names}
    finally:
        ibt.close()


def read_ld(path: Path) -> dict[str, tuple[FloatArray, float]]:
    """Every channel of a MoTeC .ld file at its own rate: name -> (values in the file's units, Hz)."""
    data = path.read_bytes()
    address = struct.unpack_from("<I", data, 8)[0]  # the first channel description
    channels: dict[str, tuple[FloatArray, float]] = {}
    types = {(0, 2): "<i2", (3, 2): "<i2", (5, 2): "<i2", (0, 4): "<i4", (3, 4): "<i4", (5, 4): "<i4"}
    types |= {(7, 2): "<f2", (7, 4): "<f4", (7, 8): "<f8"}
    while address:
        _, following, pointer, count, _, kind, size, hz, shift, mul, scale, decimals = struct.unpack_from(
            "<IIIIHHHHhhhh", data, address
        )
        name = data[address + 32 : address + 64].split(b"\0", 1)[0].decode("latin-1").strip()
        raw = np.frombuffer(data, dtype=types[(kind, size)], count=count, offset=pointer).astype(np.float64)
        channels[name] = ((raw / (scale or 1) * 10.0**-decimals + shift) * mul, float(hz))
        address = following
    return channels


# -- laps as the recordings cut them ---------------------------------------------------------------------------


def langley_laps(stamp: str) -> tuple[list[RawLap], Columns]:
    """The timed laps of one Langley file: between LapDistPct wraps, timed by LapLastLapTime."""
    raw = read_ibt(shared_data(LANGLEY.format(stamp)))
    t, pct, last = raw["SessionTime"], raw["LapDistPct"], raw["LapLastLapTime"]
    columns: Columns = {
        "t": t,
        "lap": raw["Lap"],
        "lapDistPct": pct,
        "lapDist": raw["LapDist"],
        "speed": raw["Speed"] * 3.6,
        "throttle": raw["Throttle"],
        "brake": raw["Brake"],
        "gear": raw["Gear"],
        "steering": raw["SteeringWheelAngle"],
        "lat": np.where(raw["Lat"] == 0, np.nan, raw["Lat"]),
        "lon": np.where(raw["Lon"] == 0, np.nan, raw["Lon"]),
    }
    wraps = np.flatnonzero((pct[:-1] > 0.9) & (pct[1:] < 0.1))
    # Interpolated between the samples around the wrap (iRacing may show a hair below 0 after the line).
    fractions = np.clip((1.0 - pct[wraps]) / (pct[wraps + 1] + 1.0 - pct[wraps]), 0.0, 1.0)
    crossings = [float(t[i] + f * (t[i + 1] - t[i])) for i, f in zip(wraps, fractions, strict=True)]
    laps = []
    for (start, end), index in zip(zip(crossings[:-1], crossings[1:], strict=True), wraps[1:], strict=True):
        inside = (t > start) & (t < end)
        if np.any(np.diff(t[inside]) > 1.0) or np.any(np.diff(raw["Lap"][inside]) != 0):
            continue  # a pause, a tow or a reset inside: not a timed lap
        # iRacing shows the lap's time within a few seconds of the line (-1 when it did not count).
        before = last[t <= end][-1]
        shown = last[(t > end) & (t < end + 3.0)]
        new = shown[(shown != before) & (shown > 0)]
        if new.size and abs(new[0] - (end - start)) < 0.05:
            laps.append(RawLap(int(raw["Lap"][index]), float(new[0]), start, end, cut(columns, start, end)))
    return laps, columns


def calder_laps() -> tuple[list[RawLap], float, Columns]:
    """Sample1.ld's four timed laps: lines where MoTeC's running lap timer restarts, times from "Lap Time",
    position by the speed driven from line to line (as MoTeC i2 does), on a 20 Hz time base built here."""
    ld = read_ld(shared_data(CALDER))
    t = np.arange(0.0, 454.0, 0.05)

    def on_grid(name: str) -> FloatArray:
        values, hz = ld[name]
        return np.interp(t, np.arange(values.size) / hz, values)

    timer, timer_hz = ld["Running Lap Time"]
    timer_t = np.arange(timer.size) / timer_hz
    # The line is at t - timer on the first timer sample of each lap (a restart, or the first count).
    restarted = np.flatnonzero((timer[1:] < timer[:-1]) | ((timer[:-1] == 0) & (timer[1:] > 0))) + 1
    crossings = [float(timer_t[i] - timer[i]) for i in restarted]
    shown, shown_hz = ld["Lap Time"]
    shown_t = np.arange(shown.size) / shown_hz
    speed = on_grid("Ground Speed")
    driven = np.concatenate(([0.0], np.cumsum(0.5 * (speed[1:] + speed[:-1]) / 3.6 * np.diff(t))))
    pressure = on_grid("Brake Pres Front")
    columns: Columns = {
        "t": t,
        "speed": speed,
        "throttle": on_grid("Throttle Pos") / 100.0,
        "brakePressure": pressure,
        "gear": ld["Gear"][0][np.minimum((t * ld["Gear"][1]).astype(int), ld["Gear"][0].size - 1)],
        "steering": np.radians(on_grid("Steered Angle")),
    }
    laps, lengths = [], []
    for number, (start, end) in enumerate(zip(crossings[:-1], crossings[1:], strict=True), start=1):
        before = shown[shown_t <= end][-1]
        after = shown[(shown_t > end) & (shown_t < end + 5.0)]
        new_time = after[after != before]  # the logger shows the new lap time a moment after the line
        at = np.interp([start, end], t, driven)
        lengths.append(float(at[1] - at[0]))
        lap = cut(columns, start, end)
        lap["lapDistPct"] = np.mod((np.interp(lap["t"], t, driven) - at[0]) / (at[1] - at[0]), 1.0)
        laps.append(RawLap(number, float(new_time[0]), start, end, lap))
    return laps, float(np.mean(lengths)), columns


def cut(columns: Columns, start: float, end: float) -> Columns:
    """The samples from the last one before `start` to the first one after `end`."""
    t = columns["t"]
    first = max(int(np.searchsorted(t, start, side="right")) - 1, 0)
    last = min(int(np.searchsorted(t, end, side="left")), t.size - 1)
    return {name: values[first : last + 1] for name, values in columns.items()}


@pytest.fixture(scope="session")
def langley() -> RealLaps:
    """Six timed laps of an SK Modified at Langley Speedway (iRacing, 60 Hz), from three recordings."""
    laps: list[RawLap] = []
    sessions = []
    lengths = []
    for stamp in LANGLEY_STAMPS:
        found, columns = langley_laps(stamp)
        laps += found
        sessions.append(columns)
        middle = (columns["lapDistPct"] > 0.1) & (columns["lapDistPct"] < 0.9)
        lengths.append(float(np.median(columns["lapDist"][middle] / columns["lapDistPct"][middle])))
    return RealLaps("Langley Speedway", float(np.mean(lengths)), laps, sessions)


@pytest.fixture(scope="session")
def calder() -> RealLaps:
    """The four timed laps of a real car at Calder Park (MoTeC Sample1.ld)."""
    laps, length, columns = calder_laps()
    return RealLaps("Calder", length, laps, [columns])


# -- oracles ---------------------------------------------------------------------------------------------------


def position(lap: Columns, length: float) -> FloatArray:
    """Metres from the line of each sample of a lap cut line to line: negative before it, past `length` after."""
    pct = lap["lapDistPct"]
    metres = pct * length
    metres[0] -= length if pct[0] > 0.5 else 0.0
    metres[-1] += length if pct[-1] < 0.5 else 0.0
    return metres


def elapsed(lap: RawLap, length: float, metres: FloatArray) -> FloatArray:
    """Seconds since the line when the lap passed each distance."""
    return np.interp(metres, position(lap.columns, length), lap.columns["t"] - lap.t_start)


def delta_growth(lap: RawLap, reference: RawLap, length: float, start: float, end: float) -> float:
    """How much lap-minus-reference time grows from `start` to `end` metres (through the line if end < start)."""

    def delta(at: float) -> float:
        points = np.array([at])
        return float(elapsed(lap, length, points)[0] - elapsed(reference, length, points)[0])

    if end >= start:
        return delta(end) - delta(start)
    return (delta(length) - delta(start)) + (delta(end) - delta(0.0))


def loop_samples(lap: Columns, length: float, start: float, end: float) -> tuple[FloatArray, FloatArray]:
    """(metres, sample indices) of a lap's samples from `start` forward to `end`, going through the line."""
    metres = np.clip(position(lap, length), 0.0, length)
    if end >= start:
        chosen = np.flatnonzero((metres >= start) & (metres <= end))
        return metres[chosen], chosen
    tail = np.flatnonzero(metres >= start)
    head = np.flatnonzero(metres <= end)
    return np.concatenate((metres[tail], metres[head] + length)), np.concatenate((tail, head))


def first_reaching(
    lap: Columns,
    length: float,
    values: FloatArray,
    threshold: float,
    start: float,
    end: float,
    *,
    fresh: bool,
) -> float | None:
    """Where `values` first reach `threshold` from `start` to `end` (metres, interpolated between samples):
    after being below it when `fresh`, else at `start` when already there."""
    metres, chosen = loop_samples(lap, length, start, end)
    series = np.nan_to_num(values[chosen])
    above = series >= threshold
    if not above.any():
        return None
    if above[0] and not fresh:
        return float(metres[0] % length)
    rises = np.flatnonzero(~above[:-1] & above[1:]) + 1
    if rises.size:
        i = int(rises[0])
        fraction = (threshold - series[i - 1]) / (series[i] - series[i - 1])
        return float((metres[i - 1] + fraction * (metres[i] - metres[i - 1])) % length)
    return float(metres[0] % length)  # on from the start and never released


def braking(lap: Columns) -> FloatArray:
    """The brake pedal, or the brake pressure as a fraction of the lap's highest."""
    if "brake" in lap:
        return lap["brake"]
    pressure = lap["brakePressure"]
    return pressure / float(np.nanmax(pressure))


def minimum_speed(lap: Columns, length: float, start: float, end: float) -> tuple[float, float]:
    """(lowest speed km/h, where in metres) from `start` to `end`."""
    metres, chosen = loop_samples(lap, length, start, end)
    slowest = int(np.nanargmin(lap["speed"][chosen]))
    return float(lap["speed"][chosen][slowest]), float(metres[slowest] % length)


def along(a: float, b: float, length: float) -> float:
    """How far apart two points of a lap are, going the short way round."""
    difference = (a - b) % length
    return min(difference, length - difference)


def speed_at(lap: Columns, length: float, metres: float) -> float:
    """The lap's speed (km/h) at a distance, interpolated."""
    return float(np.interp(metres, np.clip(position(lap, length), 0.0, length), lap["speed"]))


def gears_at(lap: Columns, length: float, metres: float) -> set[int]:
    """The gears the recording shows at a point of the lap: in the last sample before it and the first after
    it (a gear holds from one sample to the next, and a grid point may fall either side of a shift)."""
    if "gear" not in lap:
        return set()
    reached = np.maximum.accumulate(np.clip(position(lap, length), 0.0, length))
    after = int(np.searchsorted(reached, metres, side="right"))
    near = lap["gear"][max(after - 1, 0) : after + 1]
    return {int(gear) for gear in near if np.isfinite(gear)}


def check_gears(
    evidence: dict[str, object], lap: RawLap, reference: RawLap, length: float, text: object
) -> int:
    """Each side's gear in an item's evidence is the gear the recording shows at that side's slowest point;
    how many gears were checked."""
    checked = 0
    for side, raw in (("lap", lap), ("reference", reference)):
        measures = evidence[side]
        assert isinstance(measures, dict)
        if measures["gear"] is None:
            assert not gears_at(raw.columns, length, measures["minSpeedAt"]), (text, side)
            continue
        gears = gears_at(raw.columns, length, measures["minSpeedAt"])
        assert measures["gear"] in gears, (text, side, measures, gears)
        checked += 1
    return checked


def check_item(item: dict[str, object], lap: RawLap, reference: RawLap, length: float) -> int:
    """An item (as the API shows it) tells the truth about the two laps: its time is the growth of the delta
    over its range, and every point, speed and gear it cites is where this test finds it in the samples.
    Returns how many gears it checked."""
    span = item["range"]
    assert isinstance(span, dict)
    growth = delta_growth(lap, reference, length, float(span["from"]), float(span["to"]))
    assert item["timeLost"] == pytest.approx(growth, abs=0.02), item["text"]
    evidence = item["evidence"]
    assert isinstance(evidence, dict)
    window = evidence["window"]
    causes = item["causes"]
    assert isinstance(causes, list) and causes, item["text"]
    assert item["cause"] == causes[0]
    for cause in causes:
        for side, raw in (("lap", lap), ("reference", reference)):
            check_reading(cause["kind"], cause[side], raw.columns, length, window, item["text"])
    return check_gears(evidence, lap, reference, length, item["text"])


def check_reading(
    kind: str, reading: dict[str, float], lap: Columns, length: float, window: dict[str, float], text: object
) -> None:
    """One side of a cause against this test's own reading of the samples (10 m, 1 km/h)."""
    value = reading["value"]
    if kind == "brake_point":
        found = first_reaching(lap, length, braking(lap), 0.1, window["from"], window["apex"], fresh=True)
        assert found is not None and along(value, found, length) <= 10.0, (text, value, found)
    elif kind == "lift":
        found = first_reaching(
            lap, length, -lap["throttle"], -0.5, window["from"], window["apex"], fresh=True
        )
        assert found is not None and along(value, found, length) <= 10.0, (text, value, found)
    elif kind == "min_speed":
        lowest, where = minimum_speed(lap, length, window["from"], window["exit"])
        assert value == pytest.approx(lowest, abs=1.0), text
        # Where: within 10 m, or a place where the speed is as low (a long constant-speed arc).
        at = reading["at"]
        assert along(at, where, length) <= 10.0 or speed_at(lap, length, at) - lowest <= 1.0, (
            text,
            at,
            where,
        )
    elif kind == "throttle_point":
        _, slowest_at = minimum_speed(lap, length, window["from"], window["exit"])
        top = max(float(np.nanmax(lap["throttle"])), 0.5)
        found = first_reaching(lap, length, lap["throttle"], 0.9 * top, slowest_at, window["to"], fresh=False)
        assert found is not None and along(value, found, length) <= 10.0, (text, value, found)
    elif kind == "exit_speed":
        assert value == pytest.approx(speed_at(lap, length, window["exit"]), abs=1.0), text
    elif kind == "gear":  # the gear at the slowest point the reading cites
        assert value in gears_at(lap, length, reading["at"]), (text, value, reading)
