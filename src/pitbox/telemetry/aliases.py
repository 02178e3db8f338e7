"""The names each source uses for the canonical channels, and raw channels renamed and converted onto them.

A raw channel is looked up in its source's alias table, renamed, and its values converted from the source's unit
to the catalogue's unit (`catalogue.py`). A name that no table knows is kept as it is: unknown channels are never
dropped.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pitbox.telemetry.catalogue import CATALOGUE, ScalarConversion, convert_units, scalar_conversion

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
