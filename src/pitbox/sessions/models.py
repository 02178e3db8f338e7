"""Bodies and filters of the session routes, and the opaque cursor of a session listing."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson
from pydantic import Field, field_validator

from pitbox.auth.models import CamelModel
from pitbox.errors import Invalid

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
            raise Invalid(
                "cursor: not a cursor this API gave out",
                code="bad_cursor",
                details=[{"field": "cursor", "message": "unknown cursor"}],
            ) from None
