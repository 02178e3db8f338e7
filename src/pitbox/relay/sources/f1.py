"""EA / Codemasters F1 22, 23, 24 and 25 UDP telemetry (port 20777), the player's car or every car.

Each datagram starts with a header naming its format year (`m_packetFormat` 2022..2025) and packet id.
A car sample is made for every Car Telemetry packet (id 6): its values for the car, with the latest Motion
(0), Lap Data (2) and Car Status (7) values of the same car; Session (1) names the track and its length,
Participants (4) the team (the "car"). Layouts, checked against two public parsers of the official
specifications (the f1-game-packet-parser crate and vAzhure's F1 plugin):

* header 24 bytes in 2022, 29 from 2023 (adds `m_gameYear` and `m_overallFrameIdentifier`);
* Car Telemetry 60 bytes a car and Motion 60 bytes a car, the same every year;
* Lap Data 43 (2022), 50 (2023), 57 (2024, 2025) bytes a car; Car Status 47 (2022) or 55 bytes a car;
* Participants 56 (2022), 58 (2023), 60 (2024) or 57 (2025: 32-byte names and livery colours) bytes a car.

Wheel arrays are RL, RR, FL, FR. `m_sessionTime` is the sim's clock.
"""

from __future__ import annotations

import struct

from pitbox.relay.sources.base import CarSample, DecodeCounts, SessionInfo
from pitbox.relay.sources.layout import Field, Layout
from pitbox.telemetry.aliases import SampleMapper

__all__ = ["F1Decoder", "TRACK_NAMES", "team_name"]

MAX_CARS = 22
FORMATS = (2022, 2023, 2024, 2025)

HEADER_2022 = Layout(
    [
        ("m_packetFormat", "H"),
        ("_major", "B"),
        ("_minor", "B"),
        ("_version", "B"),
        ("m_packetId", "B"),
        ("_uid", "Q"),
        ("m_sessionTime", "f"),
        ("_frame", "I"),
        ("m_playerCarIndex", "B"),
        ("_secondary", "B"),
    ]
)
HEADER_2023 = Layout(
    [
        ("m_packetFormat", "H"),
        ("m_gameYear", "B"),
        ("_major", "B"),
        ("_minor", "B"),
        ("_version", "B"),
        ("m_packetId", "B"),
        ("_uid", "Q"),
        ("m_sessionTime", "f"),
        ("_frame", "I"),
        ("_overallFrame", "I"),
        ("m_playerCarIndex", "B"),
        ("_secondary", "B"),
    ]
)

MOTION = Layout(
    [
        ("m_worldPositionX", "f"),
        ("m_worldPositionY", "f"),
        ("m_worldPositionZ", "f"),
        ("_velocity", "f", 3),
        ("_directions", "h", 6),
        ("m_gForceLateral", "f"),
        ("m_gForceLongitudinal", "f"),
        ("m_gForceVertical", "f"),
        ("m_yaw", "f"),
        ("m_pitch", "f"),
        ("m_roll", "f"),
    ]
)

CAR_TELEMETRY = Layout(
    [
        ("m_speed", "H"),
        ("m_throttle", "f"),
        ("m_steer", "f"),
        ("m_brake", "f"),
        ("m_clutch", "B"),
        ("m_gear", "b"),
        ("m_engineRPM", "H"),
        ("m_drs", "B"),
        ("_revLightsPercent", "B"),
        ("_revLightsBitValue", "H"),
        ("m_brakesTemperature", "H", 4),
        ("m_tyresSurfaceTemperature", "B", 4),
        ("m_tyresInnerTemperature", "B", 4),
        ("m_engineTemperature", "H"),
        ("m_tyresPressure", "f", 4),
        ("_surfaceType", "B", 4),
    ]
)


def _lap_data(year: int) -> Layout:
    fields: list[Field] = [("m_lastLapTimeInMS", "I"), ("m_currentLapTimeInMS", "I")]
    if year == 2022:
        fields += [("_s1", "H"), ("_s2", "H")]
    elif year == 2023:
        fields += [
            ("_s1", "H"),
            ("_s1min", "B"),
            ("_s2", "H"),
            ("_s2min", "B"),
            ("_front", "H"),
            ("_leader", "H"),
        ]
    else:
        fields += [
            ("_s1", "H"),
            ("_s1min", "B"),
            ("_s2", "H"),
            ("_s2min", "B"),
            ("_front", "H"),
            ("_frontMin", "B"),
            ("_leader", "H"),
            ("_leaderMin", "B"),
        ]
    fields += [
        ("m_lapDistance", "f"),
        ("m_totalDistance", "f"),
        ("_safetyCarDelta", "f"),
        ("m_carPosition", "B"),
        ("m_currentLapNum", "B"),
        ("m_pitStatus", "B"),
        ("_numPitStops", "B"),
        ("m_sector", "B"),
        ("m_currentLapInvalid", "B"),
        ("_penalties", "B"),
        ("_warnings", "B"),
    ]
    if year >= 2023:
        fields.append(("_cornerCuttingWarnings", "B"))
    fields += [
        ("_unservedDriveThrough", "B"),
        ("_unservedStopGo", "B"),
        ("_gridPosition", "B"),
        ("m_driverStatus", "B"),
        ("_resultStatus", "B"),
        ("_pitLaneTimerActive", "B"),
        ("_pitLaneTime", "H"),
        ("_pitStopTimer", "H"),
        ("_pitStopShouldServePen", "B"),
    ]
    if year >= 2024:
        fields += [("_speedTrapFastestSpeed", "f"), ("_speedTrapFastestLap", "B")]
    return Layout(fields)


def _car_status(year: int) -> Layout:
    fields: list[Field] = [
        ("_tractionControl", "B"),
        ("_abs", "B"),
        ("_fuelMix", "B"),
        ("_brakeBias", "B"),
        ("_pitLimiter", "B"),
        ("m_fuelInTank", "f"),
        ("_fuelCapacity", "f"),
        ("_fuelRemainingLaps", "f"),
        ("_maxRPM", "H"),
        ("_idleRPM", "H"),
        ("_maxGears", "B"),
        ("m_drsAllowed", "B"),
        ("_drsActivationDistance", "H"),
        ("_actualCompound", "B"),
        ("_visualCompound", "B"),
        ("_tyresAgeLaps", "B"),
        ("m_vehicleFiaFlags", "b"),
    ]
    if year >= 2023:
        fields += [("_enginePowerICE", "f"), ("_enginePowerMGUK", "f")]
    fields += [
        ("m_ersStoreEnergy", "f"),
        ("_ersDeployMode", "B"),
        ("_harvestedMGUK", "f"),
        ("_harvestedMGUH", "f"),
        ("_ersDeployed", "f"),
        ("_networkPaused", "B"),
    ]
    return Layout(fields)


def _participant(year: int) -> Layout:
    fields: list[Field] = [
        ("_aiControlled", "B"),
        ("_driverId", "B"),
        ("_networkId", "B"),
        ("m_teamId", "B"),
        ("_myTeam", "B"),
        ("_raceNumber", "B"),
        ("_nationality", "B"),
        ("m_name", "s", 32 if year >= 2025 else 48),
        ("_yourTelemetry", "B"),
    ]
    if year >= 2023:
        fields.append(("_showOnlineNames", "B"))
    if year >= 2024:
        fields.append(("_techLevel", "H"))
    if year >= 2023:
        fields.append(("_platform", "B"))
    if year >= 2025:
        fields += [("_numColours", "B"), ("_liveryColours", "B", 12)]
    return Layout(fields)


SESSION = Layout(
    [
        ("_weather", "B"),
        ("_trackTemperature", "b"),
        ("_airTemperature", "b"),
        ("_totalLaps", "B"),
        ("m_trackLength", "H"),
        ("_sessionType", "B"),
        ("m_trackId", "b"),
    ]
)

LAP_DATA = {year: _lap_data(year) for year in FORMATS}
CAR_STATUS = {year: _car_status(year) for year in FORMATS}
PARTICIPANT = {year: _participant(year) for year in FORMATS}

#: F1 track ids (the same list in F1 22-25; 39-41 are F1 25's reversed layouts).
TRACK_NAMES: dict[int, tuple[str, str | None]] = {
    0: ("Melbourne", None),
    1: ("Paul Ricard", None),
    2: ("Shanghai", None),
    3: ("Sakhir (Bahrain)", None),
    4: ("Catalunya", None),
    5: ("Monaco", None),
    6: ("Montreal", None),
    7: ("Silverstone", None),
    8: ("Hockenheim", None),
    9: ("Hungaroring", None),
    10: ("Spa", None),
    11: ("Monza", None),
    12: ("Singapore", None),
    13: ("Suzuka", None),
    14: ("Abu Dhabi", None),
    15: ("Texas", None),
    16: ("Brazil", None),
    17: ("Austria", None),
    18: ("Sochi", None),
    19: ("Mexico", None),
    20: ("Baku (Azerbaijan)", None),
    21: ("Sakhir (Bahrain)", "Short"),
    22: ("Silverstone", "Short"),
    23: ("Texas", "Short"),
    24: ("Suzuka", "Short"),
    25: ("Hanoi", None),
    26: ("Zandvoort", None),
    27: ("Imola", None),
    28: ("Portimão", None),
    29: ("Jeddah", None),
    30: ("Miami", None),
    31: ("Las Vegas", None),
    32: ("Losail", None),
    39: ("Silverstone", "Reverse"),
    40: ("Austria", "Reverse"),
    41: ("Zandvoort", "Reverse"),
}

_TEAMS = {
    0: "Mercedes",
    1: "Ferrari",
    2: "Red Bull Racing",
    3: "Williams",
    4: "Aston Martin",
    5: "Alpine",
    7: "Haas",
    8: "McLaren",
}


def team_name(team_id: int, year: int) -> str:
    """The team (the car) of an F1 team id; ids 6 and 9 were renamed in 2024; others as `team <id>`."""
    if team_id == 6:
        return "AlphaTauri" if year <= 2023 else "RB"
    if team_id == 9:
        return "Alfa Romeo" if year <= 2023 else "Sauber"
    return _TEAMS.get(team_id, f"team {team_id}")


class F1Decoder:
    """F1 22-25 datagrams onto car samples; `all_cars` makes one sample per active car, else the player's."""

    source = "f1"

    def __init__(self, *, all_cars: bool = False) -> None:
        self.all_cars = all_cars
        self.counts = DecodeCounts()
        self.outbox: list[bytes] = []
        self._mapper = SampleMapper("f1")
        self._motion: dict[int, dict[str, float]] = {}
        self._laps: dict[int, dict[str, float]] = {}
        self._status: dict[int, dict[str, float]] = {}
        self._teams: dict[int, str] = {}
        self._active_cars: int | None = None
        self._track: tuple[str, str | None] | None = None
        self._track_length: float | None = None

    def decode(self, datagram: bytes) -> list[CarSample]:
        """The car samples of one datagram (only Car Telemetry packets make any)."""
        self.counts.datagrams += 1
        if len(datagram) < HEADER_2022.size:
            self.counts.truncated += 1
            return []
        year = int.from_bytes(datagram[:2], "little")
        if year not in FORMATS:
            self.counts.foreign += 1
            return []
        header_layout = HEADER_2022 if year == 2022 else HEADER_2023
        try:
            header = header_layout.read(datagram)
            return self._packet(datagram, year, header, header_layout.size)
        except struct.error:
            self.counts.truncated += 1
            return []

    def _packet(self, data: bytes, year: int, header: dict[str, object], at: int) -> list[CarSample]:
        packet_id = int(header["m_packetId"])  # type: ignore[call-overload]
        if packet_id > 15:
            self.counts.unknown += 1
            return []
        kind = f"id{packet_id}"
        self.counts.by_kind[kind] = self.counts.by_kind.get(kind, 0) + 1
        player = int(header["m_playerCarIndex"])  # type: ignore[call-overload]
        if packet_id == 0:
            self._per_car(data, at, MOTION, self._motion)
        elif packet_id == 1:
            session = SESSION.numbers(data, at)
            self._track = TRACK_NAMES.get(
                int(session["m_trackId"]), (f"F1 track {int(session['m_trackId'])}", None)
            )
            self._track_length = float(session["m_trackLength"]) or None
        elif packet_id == 2:
            self._per_car(data, at, LAP_DATA[year], self._laps)
        elif packet_id == 4:
            self._participants(data, at, year)
        elif packet_id == 7:
            self._per_car(data, at, CAR_STATUS[year], self._status)
        elif packet_id == 6:
            return self._telemetry(data, at, year, header, player)
        return []

    def _per_car(self, data: bytes, at: int, layout: Layout, into: dict[int, dict[str, float]]) -> None:
        if len(data) < at + MAX_CARS * layout.size:
            raise struct.error("short packet")
        for car in self._cars_of_interest(data):
            into[car] = layout.numbers(data, at + car * layout.size)

    def _cars_of_interest(self, data: bytes) -> range | tuple[int, ...]:
        if self.all_cars:
            return range(self._active_cars or MAX_CARS)
        player = data[22] if int.from_bytes(data[:2], "little") == 2022 else data[27]
        return (player,) if player < MAX_CARS else ()

    def _participants(self, data: bytes, at: int, year: int) -> None:
        layout = PARTICIPANT[year]
        if len(data) < at + 1 + MAX_CARS * layout.size:
            raise struct.error("short packet")
        self._active_cars = min(data[at], MAX_CARS) or None
        for car in range(MAX_CARS):
            fields = layout.read(data, at + 1 + car * layout.size)
            self._teams[car] = team_name(int(fields["m_teamId"]), year)  # type: ignore[call-overload]

    def _telemetry(
        self, data: bytes, at: int, year: int, header: dict[str, object], player: int
    ) -> list[CarSample]:
        if len(data) < at + MAX_CARS * CAR_TELEMETRY.size:
            raise struct.error("short packet")
        clock = float(header["m_sessionTime"])  # type: ignore[arg-type]
        game_year = int(header.get("m_gameYear", 22))  # type: ignore[call-overload]
        samples = []
        for car in self._cars_of_interest(data):
            raw = CAR_TELEMETRY.numbers(data, at + car * CAR_TELEMETRY.size)
            raw.update(self._motion.get(car, {}))
            lap = self._laps.get(car)
            if lap is not None:
                raw.update(lap)
                if self._track_length and lap["m_lapDistance"] >= 0:
                    raw["lapDistPct"] = min(lap["m_lapDistance"] / self._track_length, 1.0)
            raw.update(self._status.get(car, {}))
            track, config = self._track or (None, None)
            info = SessionInfo(
                sim=f"F1 {game_year}",
                track_name=track,
                track_config=config,
                track_length_m=self._track_length,
                car=self._teams.get(car),
            )
            samples.append(CarSample(car if self.all_cars else 0, clock, self._mapper.map(raw), info))
        self.counts.samples += len(samples)
        return samples
