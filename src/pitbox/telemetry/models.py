"""Types of the telemetry domain: limits of one ingest batch, a validated batch, and the answers of its routes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final, Literal

import asyncpg
import numpy as np
import numpy.typing as npt
from pydantic import Field

from pitbox.wire import Answer, Timestamp

FloatArray = npt.NDArray[np.float64]

#: Limits of one POST /api/telemetry (or one WebSocket ingest message).
MAX_BODY_BYTES: Final = 8 * 1024 * 1024
MAX_SAMPLES: Final = 10_000
MAX_CHANNELS: Final = 500
MAX_CHANNEL_NAME: Final = 64
MAX_BATCH_KEY: Final = 200
#: Largest `t` accepted: the session clock in seconds; a month is far beyond any session.
MAX_T: Final = 31 * 86_400.0


@dataclass(frozen=True)
class PendingClock:
    """What a batch with samples lacking `t` needs to get their clock from its session (`clock.resolve_clock`):
    each sample's own `timestamp` and the body's, in epoch seconds, and the body's shape (to name fields)."""

    stamps: (
        FloatArray | None
    )  # per sample, NaN where it has no timestamp of its own (None: no sample has one)
    body_stamp: float | None
    shape: str  # "data", "samples" or "columns"


@dataclass(frozen=True)
class IngestBatch:
    """A validated batch: canonical float64 columns of equal length, `t` present and non-decreasing.

    While `pending` is set, `t` is NaN for the samples whose clock comes from the session (a timestamp, or the
    time the server stores it); `clock.resolve_clock` fills it in and says which clock was used (`clock`).
    """

    driver_id: uuid.UUID
    session_id: uuid.UUID
    batch_key: str
    columns: dict[str, FloatArray]
    pending: PendingClock | None = None
    clock: str = "sample"  # sample, timestamp, server or mixed (`clock.Clock`)

    @property
    def count(self) -> int:
        """Samples in the batch."""
        return int(self.columns["t"].size)

    @property
    def t_start(self) -> float:
        """`t` of the first sample."""
        return float(self.columns["t"][0])

    @property
    def t_end(self) -> float:
        """`t` of the last sample."""
        return float(self.columns["t"][-1])


class CompletedLap(Answer):
    """A completed lap as the API shows it: session clock times (s), lap and sector times, validity."""

    session_id: uuid.UUID
    lap: int
    t_start: float
    t_end: float
    lap_time: float
    sectors: list[float | None] = Field(description="Sector times (s); null for a sector that was not timed.")
    valid: bool
    invalid_reasons: list[str]
    length_m: float | None

    @classmethod
    def fields_of(cls, row: asyncpg.Record) -> dict[str, Any]:
        """The lap's fields from a `laps` row, for this class and those that add to it."""
        reason = row["invalid_reason"]
        return {
            "session_id": row["session_id"],
            "lap": row["lap_number"],
            "t_start": row["t_start"],
            "t_end": row["t_end"],
            "lap_time": row["lap_time_s"],
            "sectors": list(row["sector_times"]),
            "valid": row["valid"],
            "invalid_reasons": reason.split(",") if reason else [],
            "length_m": None if row["length_m"] is None else round(row["length_m"], 1),
        }

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> CompletedLap:
        """From a `laps` row."""
        return cls(**cls.fields_of(row))


class BestLap(CompletedLap):
    """A driver's best valid lap on a track in a car, with where and when it was driven."""

    driver_id: uuid.UUID
    track_id: uuid.UUID | None
    track_name: str | None
    track_config: str | None
    track_length_m: float | None
    car: str | None
    session_started_at: Timestamp

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> BestLap:
        """From a row of `store.best_laps`."""
        return cls(
            **cls.fields_of(row),
            driver_id=row["driver_id"],
            track_id=row["track_id"],
            track_name=row["track_name"],
            track_config=row["track_config"],
            track_length_m=row["track_length_m"],
            car=row["car"],
            session_started_at=row["started_at"],
        )


# The answers below are rendered by orjson straight from numpy columns (they can hold 100,000 samples);
# these models only declare their schema in /openapi.json.
Column = list[float | None]


class IngestAck(Answer):
    """The answer to a telemetry batch (POST /api/telemetry and the WebSocket `telemetry` message)."""

    session_id: uuid.UUID
    driver_id: uuid.UUID
    batch_key: str
    chunk_no: int
    samples: int
    t_start: float
    t_end: float
    laps_completed: list[int]
    clock: Literal["sample", "timestamp", "server", "mixed"]
    duplicate: bool


class TelemetryPage(Answer):
    """A page of a session's samples, column-wise; `nextCursor` reads on from where it stops (or null)."""

    session_id: uuid.UUID
    channels: list[str]
    count: int
    columns: dict[str, Column]
    next_cursor: str | None


class Trace(Answer):
    """One channel downsampled: its times and values."""

    t: Column
    v: Column


class DownsampledTelemetry(Answer):
    """Each channel downsampled to `points` points (the answer with `points=N`)."""

    session_id: uuid.UUID
    channels: list[str]
    count: int
    points: int
    series: dict[str, Trace]


class ComparedLap(CompletedLap):
    """One side of a lap comparison: the lap and its channels on the common distance grid."""

    channels: dict[str, Column]


class ComparedLaps(Answer):
    """Two laps aligned on distance; `delta[i]` is a's elapsed time minus b's at `distance[i]` metres."""

    a: ComparedLap
    b: ComparedLap
    track_length: float
    distance: Column
    delta: Column
