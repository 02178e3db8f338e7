"""Codemasters' legacy UDP layout with extradata=3 (F1 2015-2017, DiRT Rally, DiRT Rally 2.0): one car a packet.

A packet is 66 little-endian float32 (264 bytes); F1 2017 sends 70 (280 bytes: session type, DRS allowed,
track number, FIA flag) and its full 1289-byte packet starts with the same 70. Field order checked
against two public parsers (ErlerPhilipp/dr2_logger, vAzhure's Codemasters plugin): time, lap time, lap
distance, total distance (a fraction of the stage in DiRT), position, speed (m/s), velocity, two direction
vectors, suspension position/velocity and wheel speed (RL, RR, FL, FR), throttle, steer, brake, clutch,
gear, lateral and longitudinal g, lap, engine rate, SLI support, race position, KERS level and maximum,
DRS, traction control, ABS, fuel in tank and capacity, in pits, sector, sector 1 and 2 times, brake
temperatures and tyre pressures (RL, RR, FL, FR), laps completed (F1: team), total laps, track length,
last lap time, maximum and idle rpm, number of gears.

The packets name neither sim nor car nor track (F1 2017's track number excepted): `--sim` labels them.
The DiRT games send the engine rate in rad/s and F1 in rpm; the packet's own maximum-rpm field tells
which (below 2,500 it is rad/s: 837.8 rad/s is 8,000 rpm).
"""

from __future__ import annotations

import math
import struct

from pitbox.relay.sources.base import CarSample, DecodeCounts, SessionInfo
from pitbox.telemetry.aliases import SampleMapper

__all__ = ["CodemastersDecoder", "F1_LEGACY_TRACKS", "FIELDS"]

FIELDS: tuple[str, ...] = (
    "total_time",
    "lap_time",
    "lap_distance",
    "total_distance",
    "pos_x",
    "pos_y",
    "pos_z",
    "speed_ms",
    *(f"velocity_{axis}" for axis in "xyz"),
    *(f"roll_vector_{axis}" for axis in "xyz"),
    *(f"pitch_vector_{axis}" for axis in "xyz"),
    *(f"suspension_position[{i}]" for i in range(4)),
    *(f"suspension_velocity[{i}]" for i in range(4)),
    *(f"wheel_speed[{i}]" for i in range(4)),
    "throttle",
    "steering_input",
    "brake",
    "clutch",
    "gear",
    "gforce_lat",
    "gforce_lon",
    "lap",
    "engine_rate",
    "sli_pro_support",
    "race_position",
    "kers_level",
    "kers_max_level",
    "drs",
    "traction_control",
    "anti_lock_brakes",
    "fuel_in_tank",
    "fuel_capacity",
    "in_pits",
    "sector",
    "sector1_time",
    "sector2_time",
    *(f"brake_temp[{i}]" for i in range(4)),
    *(f"tyre_pressure[{i}]" for i in range(4)),
    "laps_completed",
    "total_laps",
    "track_length",
    "last_lap_time",
    "max_rpm",
    "idle_rpm",
    "max_gears",
)
F1_2017_FIELDS = ("session_type", "drs_allowed", "track_number", "vehicle_fia_flags")
_BASE = struct.Struct("<66f")
_F1_2017 = struct.Struct("<70f")
_MAX_GEARS = FIELDS.index("max_gears")
_NOT_CHANNELS = {"total_time", "track_length", "max_rpm", "idle_rpm", "max_gears", "sli_pro_support"}

#: Track numbers of F1 2016/2017 (field 68 of F1 2017's packet).
F1_LEGACY_TRACKS = {
    0: "Melbourne",
    1: "Sepang",
    2: "Shanghai",
    3: "Sakhir (Bahrain)",
    4: "Catalunya",
    5: "Monaco",
    6: "Montreal",
    7: "Silverstone",
    8: "Hockenheim",
    9: "Hungaroring",
    10: "Spa",
    11: "Monza",
    12: "Singapore",
    13: "Suzuka",
    14: "Abu Dhabi",
    15: "Texas",
    16: "Brazil",
    17: "Austria",
    18: "Sochi",
    19: "Mexico",
    20: "Baku (Azerbaijan)",
    21: "Sakhir (Bahrain) Short",
    22: "Silverstone Short",
    23: "Texas Short",
    24: "Suzuka Short",
}


class CodemastersDecoder:
    """Legacy Codemasters packets onto car samples; `sim` names the game (the packets do not)."""

    source = "codemasters"

    def __init__(self, *, sim: str = "Codemasters (legacy UDP)") -> None:
        self.sim = sim
        self.counts = DecodeCounts()
        self.outbox: list[bytes] = []
        self._mapper = SampleMapper("codemasters")

    def decode(self, datagram: bytes) -> list[CarSample]:
        """One sample from a 264-byte (or longer, F1 2017) packet."""
        self.counts.datagrams += 1
        if len(datagram) < _BASE.size:
            self.counts.truncated += 1
            return []
        if len(datagram) % 4:
            self.counts.foreign += 1
            return []
        f1_2017 = len(datagram) >= _F1_2017.size
        values = (_F1_2017 if f1_2017 else _BASE).unpack_from(datagram)
        # float32 values cannot add up to an overflow: the sum is finite exactly when every value is (all 70
        # of F1 2017's: a NaN track number is as foreign as a NaN speed).
        if not math.isfinite(sum(values)) or not 0 <= values[_MAX_GEARS] <= 12:
            self.counts.foreign += 1  # float fields that are not a car's state: someone else's datagram
            return []
        raw = dict(zip(FIELDS, values[: len(FIELDS)], strict=True))
        track_name = None
        if f1_2017:
            extra = dict(zip(F1_2017_FIELDS, values[len(FIELDS) :], strict=True))
            raw["drs_allowed"] = extra["drs_allowed"]
            raw["vehicle_fia_flags"] = extra["vehicle_fia_flags"]
            number = extra["track_number"]
            track_name = F1_LEGACY_TRACKS.get(int(number)) if number.is_integer() else None
        if 0 < raw["max_rpm"] < 2500:
            raw["engine_rate"] = raw.pop("engine_rate")
        else:
            raw["engine_rpm"] = raw.pop("engine_rate")
        track_length = raw["track_length"] if raw["track_length"] > 0 else None
        if track_length and raw["lap_distance"] >= 0:
            raw["lapDistPct"] = min(raw["lap_distance"] / track_length, 1.0)
        clock = raw["total_time"]
        for name in _NOT_CHANNELS:
            raw.pop(name, None)
        info = SessionInfo(sim=self.sim, track_name=track_name, track_length_m=track_length)
        self.counts.samples += 1
        return [CarSample(0, clock, self._mapper.map(raw), info)]
