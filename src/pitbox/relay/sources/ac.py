"""Assetto Corsa remote telemetry (UDP 9996): handshake, subscribe, 328-byte RTCarInfo updates, dismiss.

The relay is the client (`--connect HOST:9996`). Protocol, checked against the published remote-telemetry
notes (vpicon/acudp's UDP.md) and AssettoNet's client:

* the client sends a handshaker, three little-endian int32: identifier, version, operation
  (0 handshake, 1 subscribe to updates, 2 subscribe to spot events, 3 dismiss);
* the sim answers the handshake with 408 bytes: car name (50 UTF-16 characters), driver name (50),
  identifier and version (int32 each), track name (50) and track configuration (50);
* after "subscribe update" every physics step comes as an RTCarInfo packet (`RT_CAR_INFO`, 328 bytes,
  shared with the capture reader in pitbox.recordings.assetto); "dismiss" stops them.

RTCarInfo carries no clock: the sim's lap timer (`lapTime`, ms) is, so the relay's clock for Assetto Corsa
is that timer's progress (see `LapTimerClock`).
"""

from __future__ import annotations

import struct

import numpy as np

from pitbox.recordings.assetto import PACKET_SIZE, RT_CAR_INFO
from pitbox.relay.sources.base import CarSample, DecodeCounts, SessionInfo, text_field
from pitbox.relay.sources.clock import LapTimerClock
from pitbox.telemetry.aliases import SampleMapper

__all__ = [
    "HANDSHAKE_RESPONSE_SIZE",
    "AssettoCorsaDecoder",
    "handshake_response",
    "handshaker",
    "read_handshaker",
]

OP_HANDSHAKE, OP_SUBSCRIBE_UPDATE, OP_SUBSCRIBE_SPOT, OP_DISMISS = 0, 1, 2, 3
HANDSHAKER = struct.Struct("<3i")
HANDSHAKE_RESPONSE = struct.Struct("<100s100sii100s100s")
HANDSHAKE_RESPONSE_SIZE = HANDSHAKE_RESPONSE.size  # 408
_SKIPPED = {"identifier", "size", "speed_Mph", "speed_Ms"}
_NAMES = [name for name in RT_CAR_INFO.names or () if not name.startswith("_") and name not in _SKIPPED]
#: Where each kept field sits in a record's tuple, with its name (or its items' names, for an array).
_FIELDS: list[tuple[int, str | tuple[str, ...]]] = [
    (
        (RT_CAR_INFO.names or ()).index(name),
        tuple(f"{name}[{i}]" for i in range(RT_CAR_INFO[name].shape[0])) if RT_CAR_INFO[name].shape else name,
    )
    for name in _NAMES
]


def handshaker(operation: int, *, identifier: int = 1, version: int = 1) -> bytes:
    """The 12-byte datagram asking the sim for `operation`."""
    return HANDSHAKER.pack(identifier, version, operation)


def read_handshaker(datagram: bytes) -> int | None:
    """The operation a handshaker datagram asks for (the sim's side; relay-replay plays it)."""
    if len(datagram) != HANDSHAKER.size:
        return None
    return int(HANDSHAKER.unpack(datagram)[2])


def handshake_response(car: str, driver: str, track: str, config: str, *, version: int = 1) -> bytes:
    """The sim's 408-byte answer to a handshake (what relay-replay sends in the sim's place)."""

    def utf16(text: str) -> bytes:
        return text.encode("utf-16-le")[:98]

    return HANDSHAKE_RESPONSE.pack(utf16(car), utf16(driver), 4242, version, utf16(track), utf16(config))


class AssettoCorsaDecoder:
    """The client side of AC's remote telemetry: decodes the handshake answer and RTCarInfo packets."""

    source = "assetto_corsa"

    def __init__(self) -> None:
        self.counts = DecodeCounts()
        self.outbox: list[bytes] = []
        self.info = SessionInfo(sim="Assetto Corsa")
        self.subscribed = False
        self._mapper = SampleMapper("assetto_corsa")
        self._clock = LapTimerClock(unit_s=0.001)

    def hello(self) -> bytes:
        """The first datagram to send the sim (and again while it does not answer)."""
        return handshaker(OP_HANDSHAKE)

    def goodbye(self) -> bytes:
        """The datagram that makes the sim stop sending (on exit)."""
        return handshaker(OP_DISMISS)

    def decode(self, datagram: bytes) -> list[CarSample]:
        """The handshake answer (names; queues the subscription) or one RTCarInfo sample."""
        self.counts.datagrams += 1
        if len(datagram) == HANDSHAKE_RESPONSE_SIZE:
            car, driver, _identifier, _version, track, config = HANDSHAKE_RESPONSE.unpack(datagram)
            self.info = SessionInfo(
                sim="Assetto Corsa",
                track_name=text_field(track, "utf-16-le"),
                track_config=text_field(config, "utf-16-le"),
                car=text_field(car, "utf-16-le"),
            )
            self.counts.by_kind["handshake"] = self.counts.by_kind.get("handshake", 0) + 1
            if not self.subscribed:
                self.outbox.append(handshaker(OP_SUBSCRIBE_UPDATE))
                self.subscribed = True
            return []
        if len(datagram) != PACKET_SIZE:
            if len(datagram) < PACKET_SIZE:
                self.counts.truncated += 1
            else:
                self.counts.foreign += 1
            return []
        record = np.frombuffer(datagram, dtype=RT_CAR_INFO, count=1)[0]
        if record["identifier"] != b"a" or int(record["size"]) != PACKET_SIZE:
            self.counts.foreign += 1
            return []
        fields = record.item()  # one tuple (arrays as ndarrays): far cheaper than a lookup per field
        raw: dict[str, float] = {}
        for position, name in _FIELDS:
            if isinstance(name, tuple):
                raw.update(zip(name, fields[position].tolist(), strict=True))
            else:
                raw[name] = fields[position]
        clock = self._clock.advance(raw["lapTime"], raw["lastLap"], int(raw["lapCount"]))
        self.counts.samples += 1
        return [CarSample(0, clock, self._mapper.map(raw), self.info)]
