"""Bodies, filters and answers of the session routes, and the opaque cursor of a session listing."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import orjson
from pydantic import Field, field_validator

from pitbox.auth.models import CamelModel
from pitbox.errors import BadCursor
from pitbox.telemetry.models import CompletedLap
from pitbox.wire import Answer, Timestamp

SessionType = Literal["practice", "qualifying", "race", "test"]
#: The lap lengths a session may state (m): a kart track's to a Nordschleife's and more; outside, a unit mix-up.
MIN_TRACK_LENGTH_M = 100.0
MAX_TRACK_LENGTH_M = 100_000.0


class SessionCreate(CamelModel):
    driver_id: uuid.UUID = Field(alias="driverId")
    name: str = Field(min_length=1, max_length=200)
    track_id: uuid.UUID | None = Field(None, alias="trackId")
    track_name: str | None = Field(
        None,
        alias="trackName",
        max_length=200,
        description="With no trackId: the track is matched by name, configuration and length, or created.",
    )
    track_config: str | None = Field(
        None, alias="trackConfig", max_length=200, description="The layout, if any."
    )
    track_length_m: float | None = Field(
        None,
        alias="trackLengthM",
        ge=MIN_TRACK_LENGTH_M,
        le=MAX_TRACK_LENGTH_M,
        strict=True,  # a number: true is not 1 m, nor is "2260" a length
        allow_inf_nan=False,
        description="Lap length measured from the data (m), 100 m to 100 km.",
    )
    car: str | None = Field(None, max_length=200)
    sim: str | None = Field(None, max_length=100)
    type: SessionType = "practice"

    @field_validator("track_name", "track_config")
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
        return None if value is None else " ".join(value.split())


@dataclass(frozen=True)
class SessionFilter:
    """Filters of a session listing; None means "any"."""

    track: str | None = None
    car: str | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None
    best_lap_below: float | None = None
    status: Literal["active", "ended"] | None = None


@dataclass(frozen=True)
class SessionCursor:
    """Where the next page of a listing starts: after the session started at `started_at` with `id`."""

    started_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        """The cursor as an opaque URL-safe string."""
        raw = orjson.dumps([self.started_at.isoformat(), str(self.id)])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> SessionCursor:
        """Read a cursor given back by a client; Invalid when it was not made by `encode`."""
        try:
            started_at, session_id = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            return cls(datetime.fromisoformat(started_at), uuid.UUID(session_id))
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise BadCursor(
                "cursor: not a cursor this API gave out",
                details=[{"field": "cursor", "message": "unknown cursor"}],
            ) from None


class Session(Answer):
    """A session as the API shows it, with its running statistics."""

    id: uuid.UUID
    driver_id: uuid.UUID
    track_id: uuid.UUID | None
    track_name: str | None
    track_config: str | None
    track_length_m: float | None
    measured_length_m: float | None = Field(description="Lap length this session's own data measured (m).")
    name: str
    car: str | None
    sim: str | None
    type: SessionType
    status: Literal["active", "ended"]
    started_at: Timestamp
    ended_at: Timestamp | None
    last_activity_at: Timestamp
    sample_count: int
    lap_count: int
    best_lap_time: float | None
    distance_m: float
    duration_s: float
    channels: list[str]
    approval_required: bool
    cues_muted: bool

    @classmethod
    def fields_of(cls, row: asyncpg.Record) -> dict[str, Any]:
        """The session's fields from a row of the session queries (with its track), for this class and those
        that add to it. Its duration runs over its samples' clock, else from its start to its end or last
        activity."""
        t_first, t_last = row["t_first"], row["t_last"]
        if t_first is not None and t_last is not None:
            duration = t_last - t_first
        else:
            until = row["ended_at"] or row["last_activity_at"]
            duration = max((until - row["started_at"]).total_seconds(), 0.0)
        return {
            "id": row["id"],
            "driver_id": row["driver_id"],
            "track_id": row["track_id"],
            "track_name": row["track_name"],
            "track_config": row["track_config"],
            "track_length_m": row["track_length_m"],
            "measured_length_m": row["measured_length_m"],
            "name": row["name"],
            "car": row["car"],
            "sim": row["sim"],
            "type": row["type"],
            "status": row["status"],
            "started_at": row["started_at"],
            "ended_at": row["ended_at"],
            "last_activity_at": row["last_activity_at"],
            "sample_count": row["sample_count"],
            "lap_count": row["lap_count"],
            "best_lap_time": row["best_lap_s"],
            "distance_m": round(row["distance_m"], 3),
            "duration_s": round(duration, 3),
            "channels": list(row["channels"]),
            "approval_required": row["approval_required"],
            "cues_muted": row["cues_muted"],
        }

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Session:
        """From a row of the session queries."""
        return cls(**cls.fields_of(row))


class SessionSummary(Session):
    """One session with its completed laps and its best valid lap (null before the first)."""

    laps: list[CompletedLap]
    best_lap: CompletedLap | None
