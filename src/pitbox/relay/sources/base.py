"""What every source decoder gives the relay: car samples in canonical channels, and what it counted."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

__all__ = ["CarSample", "DecodeCounts", "Decoder", "SessionInfo", "text_field"]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Where and in what the car is, as far as the packets say: sim, track (name, layout, length) and car."""

    sim: str
    track_name: str | None = None
    track_config: str | None = None
    track_length_m: float | None = None
    car: str | None = None

    def merged(self, newer: SessionInfo) -> SessionInfo:
        """This info with every field the newer one knows taken from it."""
        return replace(
            self,
            sim=newer.sim or self.sim,
            track_name=newer.track_name or self.track_name,
            track_config=newer.track_config or self.track_config,
            track_length_m=newer.track_length_m or self.track_length_m,
            car=newer.car or self.car,
        )


@dataclass(frozen=True, slots=True)
class CarSample:
    """One sample of one car: canonical channel values, the sim's clock (s) when the packet carries one."""

    car_index: int
    clock: float | None
    values: dict[str, float | int]
    info: SessionInfo


@dataclass(slots=True)
class DecodeCounts:
    """Datagrams seen by a decoder: decoded, carrying samples, and skipped (truncated, unknown, foreign)."""

    datagrams: int = 0
    samples: int = 0
    truncated: int = 0
    unknown: int = 0
    foreign: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        """Datagrams that were not understood, whatever the reason."""
        return self.truncated + self.unknown + self.foreign


class Decoder(Protocol):
    """A sim's packets onto car samples. `outbox` holds datagrams to send back to the sim (Assetto Corsa)."""

    source: str
    counts: DecodeCounts
    outbox: list[bytes]

    def decode(self, datagram: bytes) -> list[CarSample]:
        """The car samples in one datagram (often none); never raises on bad input, counts it instead."""
        ...


def text_field(raw: bytes, encoding: str = "utf-8") -> str | None:
    """A fixed-size, NUL-padded text field as a string (None when empty)."""
    if encoding == "utf-16-le":
        for end in range(0, len(raw) - 1, 2):
            if raw[end : end + 2] == b"\0\0":
                raw = raw[:end]
                break
    else:
        raw = raw.split(b"\0", 1)[0]
    text = raw.decode(encoding, errors="replace").strip()
    return text or None
