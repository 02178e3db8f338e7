"""A cue as the API and the `ai:<driverId>` channel show it (docs/cues.md), and the cue states."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import asyncpg

from pitbox.wire import Answer, Timestamp

CueState = Literal[
    "pending_approval", "planned", "armed", "fired", "muted", "suppressed", "silenced", "expired"
]
#: Between instances: a session's cues changed (planned, armed, muted, released); each reloads them.
CUES_CHANNEL = "internal:cues"


class CueReference(Answer):
    """The stored lap a cue's advice was measured against."""

    session_id: uuid.UUID
    lap: int | None


class Cue(Answer):
    """A stored cue, camelCase; distances in metres from the start/finish line."""

    id: uuid.UUID
    session_id: uuid.UUID
    driver_id: uuid.UUID
    feedback_id: uuid.UUID
    coached_lap: int
    lap: int
    corner: str
    corner_number: int
    phase: Literal["entry", "exit", "corner"]
    text: str
    trigger_distance: float
    trigger_pct: float
    anchor_distance: float
    lap_length: float
    lead_s: float
    speed_kmh: float
    time_lost: float
    cause: Any
    reference: CueReference | None
    audio_url: str | None
    audio_duration_s: float | None
    audio_ready_at: Timestamp | None
    state: CueState
    reason: str | None
    fired_at: Timestamp | None
    fired_t: float | None
    fired_distance: float | None
    efficacy: Any
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Cue:
        """From a `coaching_cues` row."""
        audio_key = row["audio_key"]
        reference = (
            CueReference(session_id=row["reference_session_id"], lap=row["reference_lap"])
            if row["reference_session_id"] is not None
            else None
        )
        return cls(
            id=row["id"],
            session_id=row["session_id"],
            driver_id=row["driver_id"],
            feedback_id=row["feedback_id"],
            coached_lap=row["coached_lap"],
            lap=row["for_lap"],
            corner=row["corner"],
            corner_number=row["corner_number"],
            phase=row["phase"],
            text=row["text"],
            trigger_distance=row["trigger_m"],
            trigger_pct=round(row["trigger_m"] / row["lap_length_m"], 5),
            anchor_distance=row["anchor_m"],
            lap_length=row["lap_length_m"],
            lead_s=row["lead_s"],
            speed_kmh=row["speed_kmh"],
            time_lost=round(row["time_lost_s"], 3),
            cause=row["cause"],
            reference=reference,
            audio_url=f"/api/voice/audio/{audio_key}" if audio_key else None,
            audio_duration_s=None if row["audio_s"] is None else round(row["audio_s"], 2),
            audio_ready_at=row["audio_ready_at"],
            state=row["state"],
            reason=row["reason"],
            fired_at=row["fired_at"],
            fired_t=row["fired_t"],
            fired_distance=None if row["fired_m"] is None else round(row["fired_m"], 1),
            efficacy=row["efficacy"],
            created_at=row["created_at"],
        )
