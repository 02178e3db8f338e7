"""Bodies of the coaching routes."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field, model_validator

from pitbox.auth.models import CamelModel


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

    text: str = Field(min_length=1, max_length=500, description="What the driver hears (and sees).")


class SessionCoaching(CamelModel):
    """The coaching switches of a session: give one or both."""

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
