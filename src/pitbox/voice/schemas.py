"""Bodies and answers of the voice routes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pitbox.auth.models import CamelModel
from pitbox.voice.models import Provider
from pitbox.wire import Answer


class SynthesizeRequest(CamelModel):
    text: str = Field(
        max_length=5000,
        description="What to say (1,000 characters at most after trimming).",
        # What the service accepts once the text is normalised (whitespace collapsed): something to say.
        json_schema_extra={"maxLength": 1000, "pattern": r"\S"},
    )
    voice_id: str | None = Field(
        None, alias="voiceId", max_length=100, description="A voice id; default voice if absent."
    )
    format: Literal["wav", "mp3"] | None = Field(
        None, description="Preferred audio format; the local voice always gives WAV."
    )


class Voice(Answer):
    """A voice a caller may ask for; `default` marks the one used when none is given."""

    voice_id: str
    provider: Provider
    default: bool


class Synthesis(Answer):
    """A synthesis as JSON (`Accept: application/json`): where to fetch the audio, and what it is."""

    url: str
    key: str
    content_type: str
    provider: Provider
    voice: str
    duration_s: float
    cached: bool
    fallback_reason: str | None
