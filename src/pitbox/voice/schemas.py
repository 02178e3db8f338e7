"""Bodies of the voice routes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pitbox.auth.models import CamelModel


class SynthesizeRequest(CamelModel):
    text: str = Field(max_length=5000, description="What to say (1,000 characters at most after trimming).")
    voice_id: str | None = Field(
        None, alias="voiceId", max_length=100, description="A voice id; default voice if absent."
    )
    format: Literal["wav", "mp3"] | None = Field(
        None, description="Preferred audio format; the local voice always gives WAV."
    )
