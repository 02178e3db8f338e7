"""Project CARS (UDP v1) and Project CARS 2 / Automobilista 2 (SMS UDP v2, port 5606), the viewed car.

Both are told apart by datagram length. Layouts, checked against two public parsers each:

* v1 (SenorPez's project-cars-replay-enhancer and its Java twin): telemetry 1,367 bytes (build version,
  a type/sequence byte whose low two bits are the packet type 0, game/session state, viewed participant,
  inputs, lap and sector times, flag, pit mode, car state, motion, per-wheel data, 56 participants of 16
  bytes, track length); participant strings 1,347 bytes (type 1: car, class, track location and
  variation, 16 names); additional participant strings 1,028 bytes (type 2, names only: not used).
* v2 (a ctypes and a struct parser of SMS_UDP_Definitions.hpp): a 12-byte header (packet number,
  category packet number, partial index and count, packet type, version), then car physics (type 0, 556
  bytes, 559 with AMS2's tick count), race definition (1: track length, location, variation), timings
  (3: 32 participants of 32 bytes with lap, lap distance, pit mode, flag, lap time), time stats (7: last
  lap times) and participant vehicle names (8: vehicle index and name).

A telemetry (v1) or car physics (v2) packet is one sample of the viewed car. The gear nibble reads 15 for
reverse; inputs are 0..255. Packets carry no session clock: the lap timer drives the clock (clock.py).
"""

from __future__ import annotations

import struct

from pitbox.relay.sources.base import CarSample, DecodeCounts, SessionInfo, text_field
from pitbox.relay.sources.clock import LapTimerClock
from pitbox.relay.sources.layout import Field, Layout
from pitbox.telemetry.aliases import SampleMapper

__all__ = ["PCarsDecoder"]


def _wheels(name: str, code: str) -> Field:
    return (name, code, 4)


V1_TELEMETRY = Layout(
    [
        ("_buildVersion", "H"),
        ("_packetTypeSequence", "B"),
        ("_gameSessionState", "B"),
        ("sViewedParticipantIndex", "b"),
        ("_numParticipants", "b"),
        ("_unfilteredThrottle", "B"),
        ("_unfilteredBrake", "B"),
        ("_unfilteredSteering", "b"),
        ("_unfilteredClutch", "B"),
        ("_raceStateFlags", "B"),
        ("_lapsInEvent", "B"),
        ("_bestLapTime", "f"),
        ("sLastLapTime", "f"),
        ("sCurrentTime", "f"),
        ("_splits", "f", 3),
        ("_eventTimeRemaining", "f"),
        ("_fastestLaps", "f", 2),
        ("_sectorTimes", "f", 12),
        ("_joyPad", "H"),
        ("sHighestFlag", "B"),
        ("sPitModeSchedule", "B"),
        ("sOilTempCelsius", "h"),
        ("_oilPressure", "H"),
        ("sWaterTempCelsius", "h"),
        ("_waterPressure", "H"),
        ("_fuelPressure", "H"),
        ("_carFlags", "B"),
        ("sFuelCapacity", "B"),
        ("sBrake", "B"),
        ("sThrottle", "B"),
        ("sClutch", "B"),
        ("sSteering", "b"),
        ("sFuelLevel", "f"),
        ("sSpeed", "f"),
        ("sRpm", "H"),
        ("_maxRpm", "H"),
        ("sGearNumGears", "B"),
        ("_boostAmount", "B"),
        ("_enforcedPitStopLap", "b"),
        ("_crashState", "B"),
        ("sOdometerKM", "f"),
        ("sOrientation", "f", 3),
        ("sLocalVelocity", "f", 3),
        ("_worldVelocity", "f", 3),
        ("_angularVelocity", "f", 3),
        ("sLocalAcceleration", "f", 3),
        ("_worldAcceleration", "f", 3),
        ("_extentsCentre", "f", 3),
        _wheels("_tyreFlags", "B"),
        _wheels("_terrain", "B"),
        _wheels("_tyreY", "f"),
        _wheels("sTyreRPS", "f"),
        _wheels("_tyreSlipSpeed", "f"),
        _wheels("sTyreTemp", "B"),
        _wheels("_tyreGrip", "B"),
        _wheels("_tyreHeightAboveGround", "f"),
        _wheels("_tyreLateralStiffness", "f"),
        _wheels("sTyreWear", "B"),
        _wheels("_brakeDamage", "B"),
        _wheels("_suspensionDamage", "B"),
        _wheels("sBrakeTempCelsius", "h"),
        _wheels("_tyreTreadTemp", "H"),
        _wheels("_tyreLayerTemp", "H"),
        _wheels("_tyreCarcassTemp", "H"),
        _wheels("_tyreRimTemp", "H"),
        _wheels("_tyreInternalAirTemp", "H"),
        _wheels("_wheelLocalPositionY", "f"),
        _wheels("sRideHeight", "f"),
        _wheels("sSuspensionTravel", "f"),
        _wheels("_suspensionVelocity", "f"),
        _wheels("_airPressure", "H"),
        ("_engineSpeed", "f"),
        ("_engineTorque", "f"),
        ("_aeroDamage", "B"),
        ("_engineDamage", "B"),
        ("_weather", "b", 6),
    ]
)
V1_PARTICIPANT = Layout(
    [
        ("sWorldPosition", "h", 3),
        ("sCurrentLapDistance", "H"),
        ("_racePosition", "B"),
        ("_lapsCompleted", "B"),
        ("sCurrentLap", "B"),
        ("_sector", "B"),
        ("_lastSectorTime", "f"),
    ]
)
V1_PARTICIPANTS = 56
V1_TELEMETRY_SIZE = V1_TELEMETRY.size + V1_PARTICIPANTS * V1_PARTICIPANT.size + 4 + 3  # 1,367
V1_STRINGS = Layout(
    [
        ("_build", "H"),
        ("_type", "B"),
        ("car", "s", 64),
        ("_class", "s", 64),
        ("track", "s", 64),
        ("variation", "s", 64),
    ]
)
V1_STRINGS_SIZE = 1347
V1_MORE_STRINGS_SIZE = 1028

V2_HEADER = Layout(
    [
        ("_packetNumber", "I"),
        ("_categoryNumber", "I"),
        ("_partialIndex", "B"),
        ("_partials", "B"),
        ("type", "B"),
        ("_version", "B"),
    ]
)
V2_PHYSICS = Layout(
    [
        ("sViewedParticipantIndex", "b"),
        ("_unfiltered", "B", 2),
        ("_unfilteredSteering", "b"),
        ("_unfilteredClutch", "B"),
        ("_carFlags", "B"),
        ("sOilTempCelsius", "h"),
        ("_oilPressure", "H"),
        ("sWaterTempCelsius", "h"),
        ("_waterPressure", "H"),
        ("_fuelPressure", "H"),
        ("sFuelCapacity", "B"),
        ("sBrake", "B"),
        ("sThrottle", "B"),
        ("sClutch", "B"),
        ("sFuelLevel", "f"),
        ("sSpeed", "f"),
        ("sRpm", "H"),
        ("_maxRpm", "H"),
        ("sSteering", "b"),
        ("sGearNumGears", "B"),
        ("_boostAmount", "B"),
        ("_crashState", "B"),
        ("sOdometerKM", "f"),
        ("sOrientation", "f", 3),
        ("sLocalVelocity", "f", 3),
        ("_worldVelocity", "f", 3),
        ("_angularVelocity", "f", 3),
        ("sLocalAcceleration", "f", 3),
        ("_worldAcceleration", "f", 3),
        ("_extentsCentre", "f", 3),
        _wheels("_tyreFlags", "B"),
        _wheels("_terrain", "B"),
        _wheels("_tyreY", "f"),
        _wheels("sTyreRPS", "f"),
        _wheels("sTyreTemp", "B"),
        _wheels("_tyreHeightAboveGround", "f"),
        _wheels("sTyreWear", "B"),
        _wheels("_brakeDamage", "B"),
        _wheels("_suspensionDamage", "B"),
        _wheels("sBrakeTempCelsius", "h"),
        _wheels("_tyreTreadTemp", "H"),
        _wheels("_tyreLayerTemp", "H"),
        _wheels("_tyreCarcassTemp", "H"),
        _wheels("_tyreRimTemp", "H"),
        _wheels("_tyreInternalAirTemp", "H"),
        _wheels("_tyreTempLeft", "H"),
        _wheels("_tyreTempCenter", "H"),
        _wheels("_tyreTempRight", "H"),
        _wheels("_wheelLocalPositionY", "f"),
        _wheels("sRideHeight", "f"),
        _wheels("sSuspensionTravel", "f"),
        _wheels("_suspensionVelocity", "f"),
        _wheels("_suspensionRideHeight", "H"),
        _wheels("_airPressure", "H"),
        ("_engineSpeed", "f"),
        ("_engineTorque", "f"),
        ("_wings", "B", 2),
        ("_handBrake", "B"),
        ("_aeroDamage", "B"),
        ("_engineDamage", "B"),
        ("_joyPad", "I"),
        ("_dPad", "B"),
        ("_tyreCompound", "x", 160),
        ("_turboBoostPressure", "f"),
        ("sFullPosition", "f", 3),
        ("_brakeBias", "B"),
    ]
)
V2_PHYSICS_SIZE = V2_HEADER.size + V2_PHYSICS.size  # 555: PC2 sends 556, AMS2 559 (tick count)
V2_RACE = Layout([("_times", "f", 8), ("sTrackLength", "f"), ("track", "s", 64), ("variation", "s", 64)])
V2_TIMING = Layout(
    [
        ("_worldPosition", "h", 3),
        ("_orientation", "h", 3),
        ("sCurrentLapDistance", "H"),
        ("_racePosition", "B"),
        ("_sector", "B"),
        ("sHighestFlag", "B"),
        ("sPitModeSchedule", "B"),
        ("carIndex", "H"),
        ("_raceState", "B"),
        ("sCurrentLap", "B"),
        ("sCurrentTime", "f"),
        ("_currentSectorTime", "f"),
        ("_mpParticipantIndex", "H"),
    ]
)
V2_TIMINGS_AT = 33
V2_STATS_AT, V2_STATS_SIZE = 16, 32
V2_VEHICLE_SIZE = 72
V2_SIZES = {0: (556, 560), 1: (308, 308), 3: (1059, 1063), 4: (24, 24), 7: (1040, 1040), 8: (1164, 1164)}
V2_SIM = "Project CARS 2 / Automobilista 2"
#: Game states in which a car is driven: playing, and in a menu while the session's time runs.
PLAYING = (2, 4)
_RAW_ONLY = {
    "sGearNumGears",
    "sPitModeSchedule",
    "sHighestFlag",
    "sFuelLevel",
    "sFuelCapacity",
    "sViewedParticipantIndex",
    "carIndex",
}


class PCarsDecoder:
    """Project CARS 1 and SMS v2 (Project CARS 2, Automobilista 2) datagrams onto samples of the viewed car."""

    source = "pcars"

    def __init__(self) -> None:
        self.counts = DecodeCounts()
        self.outbox: list[bytes] = []
        self._mapper = SampleMapper("pcars")
        self._clock = LapTimerClock()
        self._info = SessionInfo(sim="Project CARS")
        self._timings: dict[int, dict[str, object]] = {}
        self._last_laps: dict[int, float] = {}
        self._vehicles: dict[int, str] = {}
        self._game_state = 2  # until a v2 game state packet says otherwise

    def decode(self, datagram: bytes) -> list[CarSample]:
        """One sample from a telemetry / car physics packet; names and timings from the others."""
        self.counts.datagrams += 1
        size = len(datagram)
        try:
            if size == V1_TELEMETRY_SIZE and datagram[2] & 3 == 0:
                return self._v1_telemetry(datagram)
            if size == V1_STRINGS_SIZE and datagram[2] & 3 == 1:
                strings = V1_STRINGS.read(datagram)
                self._note("v1 strings")
                self._info = self._info.merged(
                    SessionInfo(
                        sim="Project CARS",
                        track_name=text_field(strings["track"]),  # type: ignore[arg-type]
                        track_config=text_field(strings["variation"]),  # type: ignore[arg-type]
                        car=text_field(strings["car"]),  # type: ignore[arg-type]
                    )
                )
                return []
            if size == V1_MORE_STRINGS_SIZE and datagram[2] & 3 == 2:
                self._note("v1 more strings")
                return []
            if size >= V2_HEADER.size:
                kind = datagram[10]
                low, high = V2_SIZES.get(kind, (-1, -1))
                if low <= size <= high:
                    if self._info.sim != V2_SIM:
                        self._info = SessionInfo(sim=V2_SIM)
                    return self._v2(kind, datagram)
        except struct.error:
            self.counts.truncated += 1
            return []
        self.counts.foreign += 1
        return []

    def _note(self, kind: str) -> None:
        self.counts.by_kind[kind] = self.counts.by_kind.get(kind, 0) + 1

    def _v1_telemetry(self, data: bytes) -> list[CarSample]:
        self._note("v1 telemetry")
        raw = V1_TELEMETRY.numbers(data)
        viewed = int(raw["sViewedParticipantIndex"])
        if data[3] & 0x0F not in PLAYING or not 0 <= viewed < V1_PARTICIPANTS:
            return []  # the front end or a replay: no car is being driven
        participants_at = V1_TELEMETRY.size
        track_length = struct.unpack_from(
            "<f", data, participants_at + V1_PARTICIPANTS * V1_PARTICIPANT.size
        )[0]
        at = participants_at + viewed * V1_PARTICIPANT.size
        participant = V1_PARTICIPANT.numbers(data, at)
        sector = data[at + 11]
        # The high bits of the sector byte refine the x and z positions by quarters of a metre.
        participant["sWorldPosition[0]"] += ((sector & 0x18) >> 3) / 4
        participant["sWorldPosition[2]"] += ((sector & 0x60) >> 5) / 4
        raw.update(participant)
        if track_length > 0:
            self._info = self._info.merged(
                SessionInfo(sim=self._info.sim, track_length_m=float(track_length))
            )
        return self._sample(raw)

    def _v2(self, kind: int, data: bytes) -> list[CarSample]:
        at = V2_HEADER.size
        self._note(f"v2 type {kind}")
        if kind == 0:
            raw = V2_PHYSICS.numbers(data, at)
            viewed = int(raw["sViewedParticipantIndex"])
            if self._game_state not in PLAYING or viewed < 0:
                return []
            timing = self._timings.get(viewed)
            if timing is not None:
                raw.update({k: v for k, v in timing.items() if k != "carIndex"})  # type: ignore[misc]
                car = self._vehicles.get(int(timing["carIndex"]) & 0x7FFF)  # type: ignore[call-overload]
                if car:
                    self._info = self._info.merged(SessionInfo(sim=self._info.sim, car=car))
            if viewed in self._last_laps:
                raw["sLastLapTime"] = self._last_laps[viewed]
            return self._sample(raw)
        if kind == 1:
            race = V2_RACE.read(data, at)
            self._info = self._info.merged(
                SessionInfo(
                    sim=V2_SIM,
                    track_name=text_field(race["track"]),  # type: ignore[arg-type]
                    track_config=text_field(race["variation"]),  # type: ignore[arg-type]
                    track_length_m=float(race["sTrackLength"]) or None,  # type: ignore[arg-type]
                )
            )
        elif kind == 4:
            self._game_state = data[15] & 0x07
        elif kind == 3:
            for index in range(32):
                self._timings[index] = V2_TIMING.read(data, V2_TIMINGS_AT + index * V2_TIMING.size)
        elif kind == 7:
            for index in range(32):
                at_stats = V2_STATS_AT + index * V2_STATS_SIZE
                self._last_laps[index] = struct.unpack_from("<f", data, at_stats + 4)[0]
        elif kind == 8:
            for index in range(16):
                at_vehicle = at + index * V2_VEHICLE_SIZE
                vehicle = struct.unpack_from("<H", data, at_vehicle)[0]
                name = text_field(data[at_vehicle + 8 : at_vehicle + 8 + 64])
                if name:
                    self._vehicles[vehicle] = name
        return []

    def _sample(self, raw: dict[str, float]) -> list[CarSample]:
        gear = int(raw["sGearNumGears"]) & 0x0F
        raw["sGear"] = gear
        raw["sPitMode"] = int(raw.get("sPitModeSchedule", 0)) & 0x07
        raw["sHighestFlagColour"] = int(raw.get("sHighestFlag", 0)) & 0x0F
        raw["sFuelLitres"] = raw["sFuelLevel"] * raw["sFuelCapacity"]
        length = self._info.track_length_m
        if length and "sCurrentLapDistance" in raw:
            raw["lapDistPct"] = min(raw["sCurrentLapDistance"] / length, 1.0)
        lap = int(raw.get("sCurrentLap", 0))
        clock = self._clock.advance(raw.get("sCurrentTime", -1.0), raw.get("sLastLapTime", -1.0), lap)
        for name in _RAW_ONLY:
            raw.pop(name, None)
        self.counts.samples += 1
        return [CarSample(0, clock, self._mapper.map(raw), self._info)]
