"""The canonical channel catalogue: one name and one unit per quantity, and the aliases each source uses.

Every reader and every ingest path speaks these names. A raw channel is looked up in its source's alias
table, renamed, and its values converted from the source's unit to the catalogue's unit through the
conversion table below. A name that no table knows is kept as it is: unknown channels are never dropped.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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

#: The codes of the canonical `flag` channel, by name.
FLAG_CODES: dict[str, int] = {
    "none": 0,
    "green": 1,
    "blue": 2,
    "yellow": 3,
    "red": 4,
    "white": 5,
    "chequered": 6,
    "black": 7,
}

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


# ---------------------------------------------------------------------------------------------------------
# Aliases: for each source, raw name -> (canonical name, unit of the raw values). A unit of None means
# "whatever unit the file states for that channel" (MoTeC logs carry one per channel).
# ---------------------------------------------------------------------------------------------------------

Alias = tuple[str, str | None]

_CORNERS = ("FL", "FR", "RL", "RR")

IRACING_ALIASES: dict[str, Alias] = {
    "SessionTime": ("t", "s"),
    "Lap": ("lap", ""),
    "LapDistPct": ("lapDistPct", ""),
    "LapDist": ("lapDist", "m"),
    "Speed": ("speed", "m/s"),
    "RPM": ("rpm", "1/min"),
    "Gear": ("gear", ""),
    "Throttle": ("throttle", ""),  # irsdk states "%" but the values are already 0..1
    "Brake": ("brake", ""),
    "Clutch": ("clutch", "engaged"),  # irsdk: 1 = clutch fully engaged, i.e. pedal released
    "SteeringWheelAngle": ("steering", "rad"),
    "Lat": ("lat", "deg 0 = none"),  # the first sample of a file can read 0, 0
    "Lon": ("lon", "deg 0 = none"),
    "LatAccel": ("gLat", "m/s²"),
    "LongAccel": ("gLong", "m/s²"),
    "VertAccel": ("gVert", "m/s²"),
    "FuelLevel": ("fuel", "L"),
    "LapCurrentLapTime": ("lapTime", "s"),
    "LapLastLapTime": ("lastLapTime", "s ≤0 = none"),  # reads -1 after an out-lap
    "WaterTemp": ("waterTemp", "°C"),
    "OilTemp": ("oilTemp", "°C"),
    "DRS_Status": ("drs", "irsdk_DRS_Status"),
    "EnergyERSBattery": ("ers", "J"),
    "Yaw": ("yaw", "rad"),
    "Pitch": ("pitch", "rad"),
    "Roll": ("roll", "rad"),
    "OnPitRoad": ("inPit", "nonzero"),
    "SessionFlags": ("flag", "irsdk_Flags"),
    **{
        f"{ir}tempCM": (f"tyreTemp{corner}", "°C")
        for ir, corner in zip(("LF", "RF", "LR", "RR"), _CORNERS, strict=True)
    },
    **{
        f"{ir}pressure": (f"tyrePressure{corner}", "kPa")
        for ir, corner in zip(("LF", "RF", "LR", "RR"), _CORNERS, strict=True)
    },
}

#: Assetto Corsa remote telemetry (RTCarInfo over UDP) and AC / ACC shared memory (SPageFilePhysics,
#: SPageFileGraphics). Arrays are named `name[i]`, wheels in the order FL, FR, RL, RR.
ASSETTO_CORSA_ALIASES: dict[str, Alias] = {
    "speed_Kmh": ("speed", "km/h"),
    "speedKmh": ("speed", "km/h"),
    "engineRPM": ("rpm", "1/min"),
    "rpms": ("rpm", "1/min"),
    "gear": ("gear", "gear+1"),  # AC counts 0 = reverse, 1 = neutral, 2 = first
    "gas": ("throttle", ""),
    "brake": ("brake", ""),
    "clutch": ("clutch", "engaged"),  # 1 = engaged (pedal released), checked on the Monza capture
    "steer": ("steering", "deg +right"),  # RTCarInfo: wheel angle in degrees, positive turning right
    "accG_horizontal": ("gLat", "g"),
    "accG_frontal": ("gLong", "g"),
    "accG_vertical": ("gVert", "g"),
    "accG[0]": ("gLat", "g"),
    "accG[1]": ("gVert", "g"),
    "accG[2]": ("gLong", "g"),
    "lapTime": ("lapTime", "ms"),
    "lastLap": ("lastLapTime", "ms ≤0 = none"),
    "iCurrentTime": ("lapTime", "ms"),
    "iLastTime": ("lastLapTime", "ms ≤0 = none"),
    "lapCount": ("lap", ""),
    "completedLaps": ("lap", ""),
    "carPositionNormalized": ("lapDistPct", ""),
    "normalizedCarPosition": ("lapDistPct", ""),
    "carCoordinates[0]": ("x", "m"),
    "carCoordinates[1]": ("y", "m"),
    "carCoordinates[2]": ("z", "m"),
    "fuel": ("fuel", "L"),
    "heading": ("yaw", "rad"),
    "pitch": ("pitch", "rad"),
    "roll": ("roll", "rad"),
    "drs": ("drs", ""),
    "waterTemp": ("waterTemp", "°C"),
    "isInPit": ("inPit", "nonzero"),
    **{f"tyreCoreTemperature[{i}]": (f"tyreTemp{corner}", "°C") for i, corner in enumerate(_CORNERS)},
    **{f"wheelsPressure[{i}]": (f"tyrePressure{corner}", "psi") for i, corner in enumerate(_CORNERS)},
    **{f"brakeTemp[{i}]": (f"brakeTemp{corner}", "°C") for i, corner in enumerate(_CORNERS)},
}

#: F1 22/23/24 UDP fields (official `m_` names). Wheel arrays are ordered RL, RR, FL, FR in that spec.
_F1_WHEELS = ("RL", "RR", "FL", "FR")
F1_ALIASES: dict[str, Alias] = {
    "m_sessionTime": ("t", "s"),
    "m_currentLapNum": ("lap", ""),
    "m_lapDistance": ("lapDist", "m"),
    "m_speed": ("speed", "km/h"),
    "m_engineRPM": ("rpm", "1/min"),
    "m_gear": ("gear", ""),  # already -1 reverse, 0 neutral
    "m_throttle": ("throttle", ""),
    "m_brake": ("brake", ""),
    "m_clutch": ("clutch", "%"),  # 0..100 applied
    "m_drs": ("drs", ""),
    "m_worldPositionX": ("x", "m"),
    "m_worldPositionY": ("y", "m"),
    "m_worldPositionZ": ("z", "m"),
    "m_gForceLateral": ("gLat", "g"),
    "m_gForceLongitudinal": ("gLong", "g"),
    "m_gForceVertical": ("gVert", "g"),
    "m_yaw": ("yaw", "rad"),
    "m_pitch": ("pitch", "rad"),
    "m_roll": ("roll", "rad"),
    "m_currentLapTimeInMS": ("lapTime", "ms"),
    "m_lastLapTimeInMS": ("lastLapTime", "ms ≤0 = none"),
    "m_ersStoreEnergy": ("ers", "J"),
    "m_pitStatus": ("inPit", "nonzero"),  # 0 none, 1 pitting, 2 in the pit area
    "m_vehicleFiaFlags": ("flag", "F1 FIA flag"),
    **{f"m_tyresInnerTemperature[{i}]": (f"tyreTemp{w}", "°C") for i, w in enumerate(_F1_WHEELS)},
    **{f"m_tyresPressure[{i}]": (f"tyrePressure{w}", "psi") for i, w in enumerate(_F1_WHEELS)},
    **{f"m_brakesTemperature[{i}]": (f"brakeTemp{w}", "°C") for i, w in enumerate(_F1_WHEELS)},
}

#: Forza Motorsport / Horizon "Data Out" (Sled + Dash) fields. Forza's Gear (0 = reverse) and Steer (-127..127
#: input, not an angle) and Fuel (a fraction, not litres) keep their own names.
FORZA_ALIASES: dict[str, Alias] = {
    "TimestampMS": ("t", "ms"),
    "Speed": ("speed", "m/s"),
    "CurrentEngineRpm": ("rpm", "1/min"),
    "Accel": ("throttle", "u8"),
    "Brake": ("brake", "u8"),
    "Clutch": ("clutch", "u8"),
    "PositionX": ("x", "m"),
    "PositionY": ("y", "m"),
    "PositionZ": ("z", "m"),
    "AccelerationX": ("gLat", "m/s² +right"),
    "AccelerationZ": ("gLong", "m/s²"),
    "AccelerationY": ("gVert", "m/s²"),
    "Yaw": ("yaw", "rad"),
    "Pitch": ("pitch", "rad"),
    "Roll": ("roll", "rad"),
    "LapNumber": ("lap", ""),
    "CurrentLap": ("lapTime", "s"),
    "LastLap": ("lastLapTime", "s ≤0 = none"),
    **{
        f"TireTemp{where}": (f"tyreTemp{corner}", "°F")
        for where, corner in zip(("FrontLeft", "FrontRight", "RearLeft", "RearRight"), _CORNERS, strict=True)
    },
}

#: Codemasters' legacy UDP layout ("extradata" 3: F1 2015-2017, DiRT Rally, DiRT Rally 2.0): 66 float32 fields
#: (70 in F1 2017). Names are the relay's (pitbox.relay.sources.codemasters); wheel arrays are RL, RR, FL, FR.
#: The engine rate is rad/s in the DiRT games and rpm in F1: the decoder names it `engine_rate` or
#: `engine_rpm` from the packet's own maximum rpm field.
_CM_WHEELS = ("RL", "RR", "FL", "FR")
CODEMASTERS_ALIASES: dict[str, Alias] = {
    "lap": ("lap", ""),
    "lap_distance": ("lapDist", "m"),
    "speed_ms": ("speed", "m/s"),
    "engine_rate": ("rpm", "rad/s"),
    "engine_rpm": ("rpm", "1/min"),
    "gear": ("gear", ""),
    "throttle": ("throttle", ""),
    "brake": ("brake", ""),
    "clutch": ("clutch", ""),
    "pos_x": ("x", "m"),
    "pos_y": ("y", "m"),
    "pos_z": ("z", "m"),
    "gforce_lat": ("gLat", "g"),
    "gforce_lon": ("gLong", "g"),
    "fuel_in_tank": ("fuel", "L"),
    "lap_time": ("lapTime", "s"),
    "last_lap_time": ("lastLapTime", "s ≤0 = none"),
    "in_pits": ("inPit", "nonzero"),
    "drs": ("drs", ""),
    "vehicle_fia_flags": ("flag", "F1 FIA flag"),
    **{f"brake_temp[{i}]": (f"brakeTemp{w}", "°C") for i, w in enumerate(_CM_WHEELS)},
    **{f"tyre_pressure[{i}]": (f"tyrePressure{w}", "psi") for i, w in enumerate(_CM_WHEELS)},
}

#: Project CARS (v1 UDP) and Project CARS 2 / Automobilista 2 (SMS UDP v2) fields, named as SMS's headers
#: name them (`s…`); wheel arrays are FL, FR, RL, RR. The gear nibble reads 15 for reverse.
PCARS_ALIASES: dict[str, Alias] = {
    "sCurrentLap": ("lap", ""),
    "sCurrentLapDistance": ("lapDist", "m"),
    "sSpeed": ("speed", "m/s"),
    "sRpm": ("rpm", "1/min"),
    "sGear": ("gear", "gear 15 = R"),
    "sThrottle": ("throttle", "u8"),
    "sBrake": ("brake", "u8"),
    "sClutch": ("clutch", "u8"),
    "sFullPosition[0]": ("x", "m"),
    "sFullPosition[1]": ("y", "m"),
    "sFullPosition[2]": ("z", "m"),
    "sWorldPosition[0]": ("x", "m"),
    "sWorldPosition[1]": ("y", "m"),
    "sWorldPosition[2]": ("z", "m"),
    "sFuelLitres": ("fuel", "L"),
    "sCurrentTime": ("lapTime", "s <0 = none"),
    "sLastLapTime": ("lastLapTime", "s ≤0 = none"),
    "sWaterTempCelsius": ("waterTemp", "°C"),
    "sOilTempCelsius": ("oilTemp", "°C"),
    "sOrientation[0]": ("pitch", "rad"),
    "sOrientation[1]": ("yaw", "rad"),
    "sOrientation[2]": ("roll", "rad"),
    "sPitMode": ("inPit", "nonzero"),
    "sHighestFlagColour": ("flag", "SMS flag colour"),
    **{f"sTyreTemp[{i}]": (f"tyreTemp{corner}", "°C") for i, corner in enumerate(_CORNERS)},
    **{f"sBrakeTempCelsius[{i}]": (f"brakeTemp{corner}", "°C") for i, corner in enumerate(_CORNERS)},
}

#: MoTeC i2 / ADL common channel names; units come from the log itself. Listed in order of preference
#: where several logger names mean the same quantity (the first present wins, the rest keep their names).
MOTEC_ALIASES: dict[str, Alias] = {
    "Ground Speed": ("speed", None),
    "Vehicle Speed": ("speed", None),
    "Speed": ("speed", None),
    "Engine RPM": ("rpm", None),
    "Throttle Pos": ("throttle", None),
    "Brake Pos": ("brake", None),
    "Brake Pres Front": ("brakePressure", None),
    "Clutch Pos": ("clutch", None),
    "Gear": ("gear", None),
    "Steered Angle": ("steering", None),
    "Steering Angle": ("steering", None),
    "Lap Number": ("lap", None),
    "Lap Distance": ("lapDist", None),
    "Running Lap Time": ("lapTime", None),
    "Lap Time": ("lastLapTime", "s ≤0 = none"),  # i2 keeps the last completed lap here, 0 before the first
    "G Force Lat": ("gLat", None),
    "G Force Long": ("gLong", None),
    "G Force Vert": ("gVert", None),
    "Fuel Level": ("fuel", None),
    "GPS Latitude": ("lat", None),
    "GPS Longitude": ("lon", None),
    "Engine Temp": ("waterTemp", None),
    "Water Temp": ("waterTemp", None),
    "Eng Oil Temp": ("oilTemp", None),
    "Oil Temp": ("oilTemp", None),
    **{
        f"Tyre Temp {corner} {part}": (f"tyreTemp{corner}", None)
        for part in ("Centre", "Center")
        for corner in _CORNERS
    },
    **{f"Tyre Temp {corner}": (f"tyreTemp{corner}", None) for corner in _CORNERS},
    **{f"Tyre Pres {corner}": (f"tyrePressure{corner}", None) for corner in _CORNERS},
    **{f"Brake Temp {corner}": (f"brakeTemp{corner}", None) for corner in _CORNERS},
    # Assetto Corsa Competizione's MoTeC export: upper-case names, units in the file (SPEED in m/s, pedals in %).
    "SPEED": ("speed", None),
    "RPMS": ("rpm", None),
    "THROTTLE": ("throttle", None),
    "BRAKE": ("brake", None),
    "CLUTCH": ("clutch", None),
    "GEAR": ("gear", ""),
    "STEERANGLE": ("steering", None),
    "G_LAT": ("gLat", "g"),  # labelled m/s2, but the values are g (2.9 at most in a GT3)
    "G_LON": ("gLong", "g"),
    **{
        f"BRAKE_TEMP_{acc}": (f"brakeTemp{corner}", None)
        for acc, corner in zip(("LF", "RF", "LR", "RR"), _CORNERS, strict=True)
    },
    **{
        f"TYRE_PRESS_{acc}": (f"tyrePressure{corner}", "psi")
        for acc, corner in zip(("LF", "RF", "LR", "RR"), _CORNERS, strict=True)
    },
}

#: Every source this module knows, by the name readers pass as `source`.
ALIASES: dict[str, dict[str, Alias]] = {
    "iracing": IRACING_ALIASES,
    "assetto_corsa": ASSETTO_CORSA_ALIASES,
    "f1": F1_ALIASES,
    "forza": FORZA_ALIASES,
    "motec": MOTEC_ALIASES,
    "codemasters": CODEMASTERS_ALIASES,
    "pcars": PCARS_ALIASES,
}


def alias_of(raw_name: str, source: str | None = None) -> Alias | None:
    """The (canonical name, raw unit) a source's channel stands for, or None for a channel no table knows.

    Without a source, the canonical catalogue is tried first, then each source's table in turn.
    """
    if source is None:
        if raw_name in CATALOGUE:
            return raw_name, CATALOGUE[raw_name].unit
        for table in ALIASES.values():
            if raw_name in table:
                return table[raw_name]
        return None
    return ALIASES.get(source, {}).get(raw_name)


def canonical_name(raw_name: str, source: str | None = None) -> str:
    """The canonical name of a raw channel name; unknown names come back unchanged, never dropped."""
    alias = alias_of(raw_name, source)
    return raw_name if alias is None else alias[0]


def to_canonical_channels(
    raw_channels: Mapping[str, npt.NDArray[Any]],
    source: str,
    file_units: Mapping[str, str] | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """Raw channels renamed to canonical names and converted to canonical units.

    Unknown channels keep their raw name and values. When two raw channels map to one canonical name the
    first (in the alias table's order of preference) takes it and the other keeps its raw name.
    """
    table = ALIASES.get(source, {})
    preferred = sorted(
        raw_channels, key=lambda name: list(table).index(name) if name in table else len(table)
    )
    result: dict[str, npt.NDArray[Any]] = {}
    for raw_name in preferred:
        values = raw_channels[raw_name]
        alias = table.get(raw_name)
        if alias is None or alias[0] in result:
            result.setdefault(raw_name, values)
            continue
        canonical, raw_unit = alias
        channel = CATALOGUE[canonical]
        unit = raw_unit if raw_unit is not None else (file_units or {}).get(raw_name, channel.unit)
        converted = convert_units(np.asarray(values, dtype=np.float64), unit, channel.unit)
        if channel.integer and not np.isnan(converted).any():
            result[canonical] = np.rint(converted).astype(np.int64)
        else:
            result[canonical] = converted
    # Keep the raw order for unknown channels but canonical ones first, so a reader's output reads well.
    return {name: result[name] for name in sorted(result, key=lambda n: (n not in CATALOGUE, 0))}


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


class SampleMapper:
    """One sample at a time onto canonical names and units: `map({"m_speed": 212, …})` -> `{"speed": 212.0, …}`.

    The same rules as `to_canonical_channels`: unknown names are kept as they are, the first name in the
    alias table's order takes a canonical name claimed by several, a value that converts to NaN (a source's
    "none") or that is not finite is left out, and integer channels come out as ints. The plan for a set of
    raw names is computed once and kept, since a decoder emits the same names packet after packet.
    """

    def __init__(self, source: str) -> None:
        self._table = ALIASES.get(source, {})
        self._order = {name: index for index, name in enumerate(self._table)}
        self._plans: dict[tuple[str, ...], _SamplePlan] = {}

    def map(self, raw: Mapping[str, float]) -> dict[str, float | int]:
        """The sample under canonical names, in canonical units."""
        keys = tuple(raw)
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plans[keys] = self._plan(keys)
        values = list(map(float, plan.pick(raw)))
        for index, convert in plan.conversions:
            values[index] = convert(values[index])
        names: Sequence[str] = plan.names
        if not math.isfinite(sum(values)):  # a NaN or an infinity somewhere (or a sum too large)
            # Usually a conversion's "none" (a last lap time of 0): look there first, then everywhere.
            bad = [index for index, _convert in plan.conversions if not math.isfinite(values[index])]
            for index in bad:
                values[index] = 0.0
            if not math.isfinite(sum(values)):
                bad += [index for index, value in enumerate(values) if not math.isfinite(value)]
            for index in bad:
                values[index] = 0.0
            for index in plan.integers:
                values[index] = int(round(values[index]))
            names = list(names)
            for index in sorted(bad, reverse=True):  # left out
                del names[index], values[index]
            return dict(zip(names, values, strict=True))
        for index in plan.integers:
            values[index] = int(round(values[index]))
        return dict(zip(names, values, strict=True))

    def _plan(self, keys: tuple[str, ...]) -> _SamplePlan:
        preferred = sorted(keys, key=lambda name: self._order.get(name, len(self._order)))
        taken: set[str] = set()
        names: list[str] = []
        conversions: list[tuple[int, ScalarConversion]] = []
        integers: list[int] = []
        for index, raw_name in enumerate(preferred):
            alias = self._table.get(raw_name)
            if alias is None or alias[0] in taken:
                name, convert = raw_name, None
                channel = CATALOGUE.get(raw_name)
            else:
                name = alias[0]
                channel = CATALOGUE[name]
                convert = scalar_conversion(alias[1] or channel.unit, channel.unit)
            names.append(name)
            taken.add(name)
            if convert is not None:
                conversions.append((index, convert))
            if channel is not None and channel.integer:
                integers.append(index)
        pick: Callable[[Mapping[str, float]], tuple[float, ...]] = (
            operator.itemgetter(*preferred)
            if len(preferred) > 1
            else lambda raw: tuple(raw[name] for name in preferred)
        )
        return _SamplePlan(tuple(names), pick, tuple(conversions), tuple(integers))


@dataclass(frozen=True, slots=True)
class _SamplePlan:
    """How one set of raw names maps: the output names in order, how to pick the raw values in that order,
    the conversions by position, and the positions of integer channels."""

    names: tuple[str, ...]
    pick: Callable[[Mapping[str, float]], tuple[float, ...]]
    conversions: tuple[tuple[int, ScalarConversion], ...]
    integers: tuple[int, ...]


def catalogue_markdown_table() -> str:
    """The catalogue as the Markdown table docs/telemetry.md shows (a test keeps the two in step)."""

    def bound(value: float | None) -> str:
        return "" if value is None else f"{value:g}"

    lines = ["| name | unit | range | meaning |", "|---|---|---|---|"]
    for channel in CATALOGUE.values():
        span = (
            f"{bound(channel.low)}..{bound(channel.high)}"
            if (channel.low, channel.high) != (None, None)
            else ""
        )
        unit = channel.unit or ("int" if channel.integer else "fraction" if channel.high == 1.0 else "")
        lines.append(f"| `{channel.name}` | {unit} | {span} | {channel.description} |")
    return "\n".join(lines) + "\n"


def alias_markdown_table() -> str:
    """Which raw names each source uses for each canonical channel, as the table in docs/telemetry.md."""
    sources = list(ALIASES)
    lines = ["| canonical | " + " | ".join(sources) + " |", "|---" * (len(sources) + 1) + "|"]
    for name in CATALOGUE:
        cells = [
            ", ".join(f"`{raw}`" for raw, (canonical, _unit) in ALIASES[source].items() if canonical == name)
            for source in sources
        ]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
