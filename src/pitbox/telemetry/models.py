"""Types of the telemetry domain: limits of one ingest batch, a validated batch, and laps as the API shows them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import numpy as np
import numpy.typing as npt

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


def lap_json(row: asyncpg.Record) -> dict[str, Any]:
    """A stored lap as the API shows it."""
    reason = row["invalid_reason"]
    return {
        "sessionId": str(row["session_id"]),
        "lap": row["lap_number"],
        "tStart": row["t_start"],
        "tEnd": row["t_end"],
        "lapTime": row["lap_time_s"],
        "sectors": list(row["sector_times"]),
        "valid": row["valid"],
        "invalidReasons": reason.split(",") if reason else [],
        "lengthM": None if row["length_m"] is None else round(row["length_m"], 1),
    }
