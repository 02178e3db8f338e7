"""Forza "Data Out" UDP (Forza Motorsport 2023 and 7, Forza Horizon 4 and 5): Sled or Dash, by length.

Layouts, checked against two public parsers of Turn 10's Data Out documentation (vAzhure's Forza plugin,
cdn-lnk/fh4's notes) and the Rust forza parsers that shift the Dash part by 12 bytes for the Horizons:

* Sled, 232 bytes: IsRaceOn, TimestampMS, engine rpm, local acceleration/velocity, angles, per-wheel
  suspension/slip/rotation/rumble/puddle data, car ordinal, class, PI, drivetrain, cylinders;
* Dash (Motorsport 7), 311 bytes: the Sled, then position, speed (m/s), power, torque, tyre temperatures
  (°F), boost, fuel (a fraction), distance, best/last/current lap, race time, lap number, race position,
  accel/brake/clutch/handbrake (0..255), gear, steer (-127..127), driving line, AI brake difference;
* Horizon 4/5 Dash, 324 bytes: 12 more bytes after the Sled (car category and two unknowns), a padding byte
  at the end;
* Motorsport (2023) Dash, 331 bytes: the 311 of Motorsport 7, then tyre wear x4 and the track ordinal.

A packet with IsRaceOn = 0 (menus, paused) carries no car sample. Car and track are given as Forza's
ordinals (`car ordinal 445`, `track ordinal 1640`): the game sends numbers, not names.
"""

from __future__ import annotations

import struct

from pitbox.relay.sources.base import CarSample, DecodeCounts, SessionInfo
from pitbox.relay.sources.layout import Field, Layout
from pitbox.telemetry.aliases import SampleMapper

__all__ = ["ForzaDecoder"]

_WHEELS = ("FrontLeft", "FrontRight", "RearLeft", "RearRight")


def _per_wheel(name: str, code: str) -> list[Field]:
    return [(f"{name}{wheel}", code) for wheel in _WHEELS]


SLED = Layout(
    [
        ("IsRaceOn", "i"),
        ("TimestampMS", "I"),
        ("EngineMaxRpm", "f"),
        ("EngineIdleRpm", "f"),
        ("CurrentEngineRpm", "f"),
        ("AccelerationX", "f"),
        ("AccelerationY", "f"),
        ("AccelerationZ", "f"),
        ("VelocityX", "f"),
        ("VelocityY", "f"),
        ("VelocityZ", "f"),
        ("AngularVelocityX", "f"),
        ("AngularVelocityY", "f"),
        ("AngularVelocityZ", "f"),
        ("Yaw", "f"),
        ("Pitch", "f"),
        ("Roll", "f"),
        *_per_wheel("NormalizedSuspensionTravel", "f"),
        *_per_wheel("TireSlipRatio", "f"),
        *_per_wheel("WheelRotationSpeed", "f"),
        *_per_wheel("WheelOnRumbleStrip", "i"),
        *_per_wheel("WheelInPuddleDepth", "f"),
        *_per_wheel("SurfaceRumble", "f"),
        *_per_wheel("TireSlipAngle", "f"),
        *_per_wheel("TireCombinedSlip", "f"),
        *_per_wheel("SuspensionTravelMeters", "f"),
        ("CarOrdinal", "i"),
        ("CarClass", "i"),
        ("CarPerformanceIndex", "i"),
        ("DrivetrainType", "i"),
        ("NumCylinders", "i"),
    ]
)
DASH = Layout(
    [
        ("PositionX", "f"),
        ("PositionY", "f"),
        ("PositionZ", "f"),
        ("Speed", "f"),
        ("Power", "f"),
        ("Torque", "f"),
        *_per_wheel("TireTemp", "f"),
        ("Boost", "f"),
        ("Fuel", "f"),
        ("DistanceTraveled", "f"),
        ("BestLap", "f"),
        ("LastLap", "f"),
        ("CurrentLap", "f"),
        ("CurrentRaceTime", "f"),
        ("LapNumber", "H"),
        ("RacePosition", "B"),
        ("Accel", "B"),
        ("Brake", "B"),
        ("Clutch", "B"),
        ("HandBrake", "B"),
        ("Gear", "B"),
        ("Steer", "b"),
        ("NormalizedDrivingLine", "b"),
        ("NormalizedAIBrakeDifference", "b"),
    ]
)
MOTORSPORT_EXTRA = Layout([*_per_wheel("TireWear", "f"), ("TrackOrdinal", "i")])

#: Datagram length -> (sim, where the Dash part starts or None for Sled only, has the 2023 extras).
LAYOUTS: dict[int, tuple[str, int | None, bool]] = {
    232: ("Forza (Sled)", None, False),
    311: ("Forza Motorsport 7", 232, False),
    324: ("Forza Horizon 4/5", 244, False),
    331: ("Forza Motorsport", 232, True),
}
_NOT_CHANNELS = ("IsRaceOn", "TimestampMS", "CarOrdinal", "TrackOrdinal")


class ForzaDecoder:
    """Data Out datagrams onto car samples (one a datagram while a race is on)."""

    source = "forza"

    def __init__(self) -> None:
        self.counts = DecodeCounts()
        self.outbox: list[bytes] = []
        self._mapper = SampleMapper("forza")

    def decode(self, datagram: bytes) -> list[CarSample]:
        """One sample from a Sled or Dash datagram whose IsRaceOn is 1."""
        self.counts.datagrams += 1
        layout = LAYOUTS.get(len(datagram))
        if layout is None:
            if len(datagram) < SLED.size:
                self.counts.truncated += 1
            else:
                self.counts.foreign += 1
            return []
        sim, dash_at, motorsport = layout
        try:
            raw = SLED.numbers(datagram)
            if dash_at is not None:
                raw.update(DASH.numbers(datagram, dash_at))
            if motorsport:
                raw.update(MOTORSPORT_EXTRA.numbers(datagram, dash_at + DASH.size))  # type: ignore[operator]
        except struct.error:
            self.counts.truncated += 1
            return []
        self.counts.by_kind[sim] = self.counts.by_kind.get(sim, 0) + 1
        if raw["IsRaceOn"] != 1:
            return []
        clock = raw["TimestampMS"] / 1000.0
        car = f"car ordinal {int(raw['CarOrdinal'])}"
        track = f"track ordinal {int(raw['TrackOrdinal'])}" if "TrackOrdinal" in raw else None
        for name in _NOT_CHANNELS:
            raw.pop(name, None)
        self.counts.samples += 1
        return [CarSample(0, clock, self._mapper.map(raw), SessionInfo(sim=sim, track_name=track, car=car))]
