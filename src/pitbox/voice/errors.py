"""Errors of speech, one class per situation; `code` is what clients see."""

from __future__ import annotations

from pitbox.errors import Invalid, PitboxError, Unavailable


class ElevenLabsFailed(Unavailable):
    """ElevenLabs answered with an error or not at all."""

    code = "elevenlabs_failed"


class ElevenLabsPaused(Unavailable):
    """ElevenLabs is paused after a recent failure (the local voice answers instead where it can)."""

    code = "elevenlabs_paused"


class EmptyText(Invalid):
    """Speech asked for an empty text."""

    code = "empty_text"


class NothingToSay(Invalid):
    """A text with nothing the voice can say (no words)."""

    code = "nothing_to_say"


class TextTooLong(Invalid):
    """Speech asked for a text over the length limit."""

    code = "text_too_long"


class UnknownVoice(Invalid):
    """A voice this server does not have."""

    code = "unknown_voice"


class VoiceCacheBusy(Unavailable):
    """The voice cache could not keep a clip in time: retry."""

    code = "voice_cache_busy"


#: Every situation speaking a text can meet (a route that speaks lists them all).
SPEECH_ERRORS: tuple[type[PitboxError], ...] = (
    EmptyText,
    TextTooLong,
    UnknownVoice,
    NothingToSay,
    ElevenLabsFailed,
    ElevenLabsPaused,
    VoiceCacheBusy,
)
