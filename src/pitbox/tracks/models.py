"""Bodies and answers of the track routes."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from pydantic import Field, field_validator

from pitbox.auth.models import CamelModel
from pitbox.sessions.models import MAX_TRACK_LENGTH_M, MIN_TRACK_LENGTH_M
from pitbox.wire import Answer, Timestamp


class TrackCreate(CamelModel):
    name: str = Field(min_length=1, max_length=200)
    configuration: str = Field(
        "", max_length=200, description='The layout ("Grand Prix", "Oval"); empty when the circuit has one.'
    )
    country: str | None = Field(None, max_length=100)
    length_m: float | None = Field(
        None,
        alias="lengthM",
        ge=MIN_TRACK_LENGTH_M,
        le=MAX_TRACK_LENGTH_M,
        strict=True,  # a number: true is not 1 m (as a session's trackLengthM)
        description="Lap length (m), 100 m to 100 km.",
    )
    sector_splits: list[Annotated[float, Field(strict=True)]] = Field(
        default_factory=list,
        alias="sectorSplits",
        max_length=20,
        description="Lap-distance fractions (0..1, increasing) where sectors end; empty means thirds.",
    )
    corners: list[dict[str, Any]] | None = Field(None, max_length=100)

    @field_validator("sector_splits")
    @classmethod
    def _increasing_fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < v < 1 for v in value) or value != sorted(set(value)):
            raise ValueError("sector splits must be increasing fractions strictly between 0 and 1")
        return value


class TrackUpdate(TrackCreate):
    name: str | None = Field(None, min_length=1, max_length=200)  # type: ignore[assignment]
    configuration: str | None = Field(None, max_length=200)  # type: ignore[assignment]


class Track(Answer):
    """A track as the API shows it: one layout of a circuit."""

    id: uuid.UUID
    name: str
    configuration: str
    country: str | None
    length_m: float | None
    sector_splits: list[float]
    corners: Any = Field(
        description="The corners kept with the track (as the coaching analyst found them), or null."
    )
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Track:
        """From a `tracks` row."""
        return cls.from_record(row)
