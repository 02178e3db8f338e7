"""A cue as the API and the `ai:<driverId>` channel show it (docs/cues.md), and the cue states."""

from __future__ import annotations

from typing import Any, Literal

import asyncpg

CueState = Literal[
    "pending_approval", "planned", "armed", "fired", "muted", "suppressed", "silenced", "expired"
]
#: Between instances: a session's cues changed (planned, armed, muted, released); each reloads them.
CUES_CHANNEL = "internal:cues"


def cue_json(row: asyncpg.Record) -> dict[str, Any]:
    """A stored cue, camelCase; distances in metres from the start/finish line."""
    audio_key = row["audio_key"]
    reference = (
        {"sessionId": str(row["reference_session_id"]), "lap": row["reference_lap"]}
        if row["reference_session_id"] is not None
        else None
    )
    return {
        "id": str(row["id"]),
        "sessionId": str(row["session_id"]),
        "driverId": str(row["driver_id"]),
        "feedbackId": str(row["feedback_id"]),
        "coachedLap": row["coached_lap"],
        "lap": row["for_lap"],
        "corner": row["corner"],
        "cornerNumber": row["corner_number"],
        "phase": row["phase"],
        "text": row["text"],
        "triggerDistance": row["trigger_m"],
        "triggerPct": round(row["trigger_m"] / row["lap_length_m"], 5),
        "anchorDistance": row["anchor_m"],
        "lapLength": row["lap_length_m"],
        "leadS": row["lead_s"],
        "speedKmh": row["speed_kmh"],
        "timeLost": round(row["time_lost_s"], 3),
        "cause": row["cause"],
        "reference": reference,
        "audioUrl": f"/api/voice/audio/{audio_key}" if audio_key else None,
        "audioDurationS": None if row["audio_s"] is None else round(row["audio_s"], 2),
        "audioReadyAt": _iso(row["audio_ready_at"]),
        "state": row["state"],
        "reason": row["reason"],
        "firedAt": _iso(row["fired_at"]),
        "firedT": row["fired_t"],
        "firedDistance": None if row["fired_m"] is None else round(row["fired_m"], 1),
        "efficacy": row["efficacy"],
        "createdAt": row["created_at"].isoformat(),
    }


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())
