"""The canonical channel catalogue: one name and one unit per quantity, and the conversions between units.

Every reader and every ingest path speaks these names and units; the names each source uses for them are in
`aliases.py`. A value is converted from its source's unit to the catalogue's unit through the conversion table
below.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: How a channel may be resampled onto another time base: `continuous` interpolates linearly, `step`
#: holds the previous value, `wrapping` interpolates but holds across a reset (a lap counter going 0 again).
Resampling = Literal["continuous", "step", "wrapping"]


@dataclass(frozen=True)
class Channel:
    """One canonical channel: its name, unit, meaning, valid range (where meaningful) and resampling kind."""

    name: str
    unit: str
    description: str
    low: float | None = None
    high: float | None = None
    resampling: Resampling = "continuous"
    integer: bool = False


def _channels(*channels: Channel) -> dict[str, Channel]:
    return {channel.name: channel for channel in channels}


def _corners(prefix: str, unit: str, description: str, low: float | None = None) -> list[Channel]:
    names = {"FL": "front left", "FR": "front right", "RL": "rear left", "RR": "rear right"}
    return [
        Channel(f"{prefix}{corner}", unit, f"{description}, {where}", low) for corner, where in names.items()
    ]


CATALOGUE: dict[str, Channel] = _channels(
    Channel("t", "s", "Time since the recording (or session) started; never decreases", 0.0),
    Channel(
        "lap",
        "",
        "Lap number as the source counts it; goes up by one at the start/finish line",
        0.0,
        None,
        "step",
        True,
    ),
    Channel(
        "lapDistPct", "", "Fraction of the lap covered, 0 at the line, 1 back at it", 0.0, 1.0, "wrapping"
    ),
    Channel("lapDist", "m", "Distance covered since the start/finish line", 0.0, None, "wrapping"),
    Channel("speed", "km/h", "Speed of the car", 0.0, None),
    Channel("rpm", "1/min", "Engine speed", 0.0, None),
    Channel("gear", "", "Gear engaged: -1 reverse, 0 neutral, 1.. forward gears", -1.0, None, "step", True),
    Channel("throttle", "", "Throttle pedal, 0 released to 1 fully pressed", 0.0, 1.0),
    Channel("brake", "", "Brake pedal, 0 released to 1 fully pressed", 0.0, 1.0),
    Channel(
        "brakePressure",
        "kPa",
        "Brake line pressure (the front circuit where there are two): a logger's braking without a pedal sensor",
        0.0,
        None,
    ),
    Channel("clutch", "", "Clutch pedal, 0 released (clutch engaged) to 1 fully pressed", 0.0, 1.0),
    Channel("steering", "rad", "Steering wheel angle, positive to the left (counter-clockwise)"),
    Channel("x", "m", "World coordinate x, in the simulator's own frame"),
    Channel("y", "m", "World coordinate y, in the simulator's own frame"),
    Channel("z", "m", "World coordinate z, in the simulator's own frame"),
    Channel("lat", "deg", "GPS latitude", -90.0, 90.0),
    Channel("lon", "deg", "GPS longitude", -180.0, 180.0),
    Channel("gLat", "g", "Lateral acceleration, positive to the left where the source's sign is known"),
    Channel("gLong", "g", "Longitudinal acceleration, positive forward (accelerating)"),
    Channel("gVert", "g", "Vertical acceleration, including gravity where the source includes it"),
    Channel("fuel", "L", "Fuel in the tank", 0.0, None),
    Channel("lapTime", "s", "Time since the current lap started", 0.0, None, "wrapping"),
    Channel(
        "lastLapTime", "s", "Time of the last completed lap; absent until one is completed", 0.0, None, "step"
    ),
    *_corners("tyreTemp", "°C", "Tyre temperature (carcass middle where the source has several)"),
    *_corners("tyrePressure", "kPa", "Tyre pressure", 0.0),
    *_corners("brakeTemp", "°C", "Brake disc temperature"),
    Channel("waterTemp", "°C", "Engine coolant temperature"),
    Channel("oilTemp", "°C", "Engine oil temperature"),
    Channel("drs", "", "DRS flap open: 1 open, 0 closed", 0.0, 1.0, "step", True),
    Channel(
        "ers",
        "J",
        "Energy in the ERS store, in joules (sources giving only a fraction keep their own name)",
        0.0,
        None,
    ),
    Channel("yaw", "rad", "Heading (yaw) of the car in the world frame"),
    Channel("pitch", "rad", "Pitch of the car, in the source's sign convention"),
    Channel("roll", "rad", "Roll of the car, in the source's sign convention"),
    Channel(
        "inPit",
        "",
        "1 while the car is in the pit lane (pit road) or its pit box, 0 on track",
        0.0,
        1.0,
        "step",
        True,
    ),
    Channel(
        "flag",
        "",
        "Flag shown to the driver: 0 none, 1 green, 2 blue, 3 yellow, 4 red, 5 white, 6 chequered, 7 black",
        0.0,
        7.0,
        "step",
        True,
    ),
)

# ---------------------------------------------------------------------------------------------------------
# Units. Source units are first normalised through UNIT_SYNONYMS, then converted through CONVERSIONS.
# Some "units" carry a convention as well as a scale (an inverted clutch, a gear offset by one, a value
# that means "none"); spelling them as units keeps every reader's mapping a table lookup.
# ---------------------------------------------------------------------------------------------------------

G = 9.80665

UNIT_SYNONYMS: dict[str, str] = {
    "kph": "km/h",
    "kmh": "km/h",
    "km/h": "km/h",
    "rpm": "1/min",
    "revs/min": "1/min",
    "1/min": "1/min",
    "r/min": "1/min",
    "c": "°C",
    "degc": "°C",
    "°c": "°C",
    "deg c": "°C",
    "g": "g",
    "m/s^2": "m/s²",
    "m/s2": "m/s²",
    "m/s²": "m/s²",
    "l": "L",
    "litre": "L",
    "litres": "L",
    "liter": "L",
    "deg": "deg",
    "°": "deg",
    "degrees": "deg",
    "rad": "rad",
    "radians": "rad",
    "rad/s": "rad/s",
    "deg/s": "deg/s",
    "s": "s",
    "sec": "s",
    "ms": "ms",
    "m": "m",
    "mm": "mm",
    "km": "km",
    "%": "%",
    "": "",
    "1": "",
    "kpa": "kPa",
    "bar": "bar",
    "psi": "psi",
    "f": "°F",
    "°f": "°F",
    "m/s": "m/s",
    "mph": "mph",
    "j": "J",
    "mj": "MJ",
}


def _affine(scale: float, offset: float = 0.0) -> Callable[[FloatArray], FloatArray]:
    def convert(values: FloatArray) -> FloatArray:
        return values * scale + offset

    return convert


def _none_at_or_below_zero(scale: float) -> Callable[[FloatArray], FloatArray]:
    def convert(values: FloatArray) -> FloatArray:
        return np.where(values > 0, values * scale, np.nan)

    return convert


def _none_at_zero(values: FloatArray) -> FloatArray:
    return np.where(values == 0, np.nan, values)


def _nonzero(values: FloatArray) -> FloatArray:
    flags: FloatArray = (values != 0).astype(np.float64)
    return flags


def _f1_fia_flag(values: FloatArray) -> FloatArray:
    # F1 (and Codemasters' legacy vehicleFIAFlags): -1 unknown, 0 none, 1 green, 2 blue, 3 yellow, 4 red.
    flags: FloatArray = np.where((values >= 0) & (values <= 4), values, np.nan)
    return flags


# SMS (Project CARS 1/2, AMS2) flag colours 0..11: none, green, blue, white (slow car), white (final lap),
# red, yellow, double yellow, black and white, black with orange circle, black, chequered.
_SMS_FLAGS = np.array([0, 1, 2, 5, 5, 4, 3, 3, 7, 7, 7, 6], dtype=np.float64)


def _sms_flag(values: FloatArray) -> FloatArray:
    codes = np.asarray(values, dtype=np.float64)
    valid = (codes >= 0) & (codes < len(_SMS_FLAGS))
    mapped: FloatArray = np.where(
        valid, _SMS_FLAGS[np.clip(codes, 0, len(_SMS_FLAGS) - 1).astype(np.int64)], np.nan
    )
    return mapped


# irsdk SessionFlags bits, most important first: red, black (driver flags share the word), chequered,
# yellow (yellow, yellow waving, caution, caution waving, debris), blue, white, green.
_IRSDK_FLAG_BITS = (
    (0x0010, 4),
    (0x010000, 7),
    (0x0001, 6),
    (0x0008 | 0x0100 | 0x4000 | 0x8000 | 0x0040, 3),
    (0x0020, 2),
    (0x0002, 5),
    (0x0004 | 0x0400, 1),
)


def _irsdk_flag(values: FloatArray) -> FloatArray:
    bits = np.asarray(values, dtype=np.float64).astype(np.int64)
    result = np.zeros(bits.shape, dtype=np.float64)
    decided = np.zeros(bits.shape, dtype=bool)
    for mask, code in _IRSDK_FLAG_BITS:
        hit = ((bits & mask) != 0) & ~decided
        result[hit] = code
        decided |= hit
    return result


def _iracing_drs_open(values: FloatArray) -> FloatArray:
    # irsdk DRS_Status: 0 inactive, 1 can be used soon, 2 available, 3 active (open).
    return (values >= 3).astype(np.float64)


#: (source unit, canonical unit) -> function on a float array. Units already equal need no entry.
CONVERSIONS: dict[tuple[str, str], Callable[[FloatArray], FloatArray]] = {
    ("m/s", "km/h"): _affine(3.6),
    ("mph", "km/h"): _affine(1.609344),
    ("%", ""): _affine(0.01),
    ("u8", ""): _affine(1.0 / 255.0),
    ("rad/s", "1/min"): _affine(60.0 / (2.0 * math.pi)),
    ("m/s²", "g"): _affine(1.0 / G),
    ("m/s² +right", "g"): _affine(-1.0 / G),
    ("deg", "rad"): _affine(math.pi / 180.0),
    ("deg +right", "rad"): _affine(-math.pi / 180.0),
    ("ms", "s"): _affine(0.001),
    ("ms ≤0 = none", "s"): _none_at_or_below_zero(0.001),
    ("s ≤0 = none", "s"): _none_at_or_below_zero(1.0),
    ("deg 0 = none", "deg"): _none_at_zero,
    ("mm", "m"): _affine(0.001),
    ("km", "m"): _affine(1000.0),
    ("bar", "kPa"): _affine(100.0),
    ("psi", "kPa"): _affine(6.894757),
    ("°F", "°C"): _affine(5.0 / 9.0, -32.0 * 5.0 / 9.0),
    ("K", "°C"): _affine(1.0, -273.15),
    ("MJ", "J"): _affine(1e6),
    ("engaged", ""): _affine(-1.0, 1.0),
    ("gear+1", ""): _affine(1.0, -1.0),
    ("irsdk_DRS_Status", ""): _iracing_drs_open,
    ("nonzero", ""): _nonzero,
    ("F1 FIA flag", ""): _f1_fia_flag,
    ("SMS flag colour", ""): _sms_flag,
    ("irsdk_Flags", ""): _irsdk_flag,
    ("gear 15 = R", ""): lambda values: np.where(values == 15, -1.0, values),
    ("s <0 = none", "s"): lambda values: np.where(values < 0, np.nan, values),
}


def normalise_unit(unit: str) -> str:
    """The one spelling used here for a unit (`revs/min` -> `1/min`, `C` -> `°C`); unknown ones unchanged."""
    return UNIT_SYNONYMS.get(unit.strip().lower(), unit.strip())


def convert_units(values: FloatArray, from_unit: str, to_unit: str) -> FloatArray:
    """Values converted between units; unchanged where the units agree or no conversion is known."""
    source, target = normalise_unit(from_unit), normalise_unit(to_unit)
    if source == target:
        return values
    conversion = CONVERSIONS.get((source, target)) or CONVERSIONS.get((from_unit, target))
    return values if conversion is None else conversion(values)


def ms_to_kmh(values: FloatArray) -> FloatArray:
    """Speeds in m/s as km/h."""
    return convert_units(values, "m/s", "km/h")


def percent_to_fraction(values: FloatArray) -> FloatArray:
    """Percentages (0..100) as fractions (0..1)."""
    return convert_units(values, "%", "")


def rad_per_s_to_rpm(values: FloatArray) -> FloatArray:
    """Angular speeds in rad/s as revolutions per minute."""
    return convert_units(values, "rad/s", "1/min")


ScalarConversion = Callable[[float], float]


def scalar_conversion(from_unit: str, to_unit: str) -> ScalarConversion | None:
    """The conversion of one value between units (None when the units agree), from the one table above.

    Affine conversions are recognised by probing and applied as `value * scale + offset` (the per-packet
    path of a live relay calls this tens of times a packet); the others go through their array function.
    """
    source, target = normalise_unit(from_unit), normalise_unit(to_unit)
    conversion = None if source == target else CONVERSIONS.get((source, target))
    conversion = conversion or (None if source == target else CONVERSIONS.get((from_unit, target)))
    if conversion is None:
        return None
    points = np.array([0.0, 1.0, 7.5, -3.0, 15.0, 255.0, 4096.5])
    probe = conversion(points)
    offset, scale = float(probe[0]), float(probe[1] - probe[0])
    if np.all(np.isfinite(probe)) and np.allclose(probe, points * scale + offset):
        return lambda value: value * scale + offset
    array_conversion = conversion

    @functools.lru_cache(maxsize=1024)  # such values repeat (a flag, a gear, the last lap time): skip numpy
    def one(value: float) -> float:
        return float(array_conversion(np.array([value], dtype=np.float64))[0])

    return one
