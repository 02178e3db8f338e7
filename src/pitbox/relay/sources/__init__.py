"""One decoder per sim, by the name `pitbox relay SOURCE` takes, with its usual port."""

from __future__ import annotations

from dataclasses import dataclass

from pitbox.relay.sources.ac import AssettoCorsaDecoder
from pitbox.relay.sources.base import CarSample, DecodeCounts, Decoder, SessionInfo
from pitbox.relay.sources.codemasters import CodemastersDecoder
from pitbox.relay.sources.f1 import F1Decoder
from pitbox.relay.sources.forza import ForzaDecoder
from pitbox.relay.sources.pcars import PCarsDecoder

__all__ = ["SOURCES", "CarSample", "DecodeCounts", "Decoder", "SessionInfo", "SourceSpec", "make_decoder"]


@dataclass(frozen=True)
class SourceSpec:
    """A source: its usual port and whether the relay connects to the sim (AC) or listens for it."""

    name: str
    port: int
    connects: bool = False
    udp: bool = True


SOURCES: dict[str, SourceSpec] = {
    "f1": SourceSpec("f1", 20777),
    "codemasters": SourceSpec("codemasters", 20777),
    "forza": SourceSpec("forza", 5300),
    "ac": SourceSpec("ac", 9996, connects=True),
    "pcars": SourceSpec("pcars", 5606),
    "iracing": SourceSpec("iracing", 0, udp=False),
}


def make_decoder(source: str, *, all_cars: bool = False, sim: str | None = None) -> Decoder:
    """A fresh decoder for a UDP source (`iracing` has a poller instead: pitbox.relay.sources.iracing)."""
    if source == "f1":
        return F1Decoder(all_cars=all_cars)
    if source == "codemasters":
        return CodemastersDecoder(sim=sim or "Codemasters (legacy UDP)")
    if source == "forza":
        return ForzaDecoder()
    if source == "ac":
        return AssettoCorsaDecoder()
    if source == "pcars":
        return PCarsDecoder()
    raise ValueError(f"no UDP decoder for source {source!r}")
