"""Bodies and answers of the coaching routes."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import asyncpg
from pydantic import ConfigDict, Field, model_validator

from pitbox.auth.models import CamelModel
from pitbox.wire import Answer, Timestamp


class FeedbackRequest(CamelModel):
    """POST /api/ai/feedback, as SPEC.md: which driver and session, and the lap to coach."""

    driver_id: uuid.UUID = Field(alias="driverId")
    session_id: uuid.UUID = Field(alias="sessionId")
    telemetry_data: dict[str, Any] = Field(
        alias="telemetryData",
        description='{"lap": N} for a stored lap, the lap inline as {"columns": {...}} or {"samples": [...]}, or '
        'any telemetry object (SPEC.md\'s, such as {"speed": 120.5, "rpm": 7500}): the session\'s last completed '
        "lap is coached, and before the first the stored feedback says so; an AI agent gets the object as sent. "
        'Optional "reference": {"sessionId", "lap"} or inline samples (default: the driver\'s best lap).',
    )


class PitWallMessage(CamelModel):
    """A message from the pit wall to the driver."""

    text: str = Field(
        min_length=1,
        max_length=500,
        description="What the driver hears (and sees).",
        json_schema_extra={"pattern": r"\S"},  # whitespace is trimmed: something must be left
    )


class SessionCoaching(CamelModel):
    """The coaching switches of a session: give one or both."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["approvalRequired"], "properties": {"approvalRequired": {"type": "boolean"}}},
                {"required": ["cuesMuted"], "properties": {"cuesMuted": {"type": "boolean"}}},
            ]
        }
    )

    approval_required: bool | None = Field(
        None,
        alias="approvalRequired",
        strict=True,  # true or false: not 1, "yes" or "off"
        description="AI feedback (and its in-lap cues) waits for an engineer's approval before the driver "
        "sees or hears it.",
    )
    cues_muted: bool | None = Field(
        None,
        alias="cuesMuted",
        strict=True,
        description="No in-lap cue is said to the driver while set (docs/cues.md).",
    )

    @model_validator(mode="after")
    def _something_to_set(self) -> SessionCoaching:
        if self.approval_required is None and self.cues_muted is None:
            raise ValueError("give approvalRequired or cuesMuted")
        return self


class Feedback(Answer):
    """A stored feedback as the API and the `ai:<driverId>` channel show it: the coaching of a lap (`analysis`)
    or a message from the pit wall (`pit_wall`), its items (docs/ai-agent.md, contract 4) and its audio."""

    id: uuid.UUID
    session_id: uuid.UUID
    driver_id: uuid.UUID
    lap: int | None
    kind: Literal["analysis", "pit_wall"]
    source: str
    status: Literal["published", "pending_approval", "rejected"]
    summary: str
    items: list[dict[str, Any]]
    audio_url: str | None
    latency_ms: int | None
    created_by: uuid.UUID | None
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Feedback:
        """From an `ai_feedback` row."""
        return cls.from_record(
            row, lap=row["lap_number"], audio_url=audio_url(row["audio_key"]) if row["audio_key"] else None
        )


class SessionCoachingState(Answer):
    """A session's coaching switches as they now are."""

    session_id: uuid.UUID
    approval_required: bool
    cues_muted: bool


def audio_url(key: str) -> str:
    """Where a spoken clip is served."""
    return f"/api/voice/audio/{key}"
