"""Plain types of the voice domain: what a synthesis answers, what the cache holds, which voices exist."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

Provider = Literal["piper", "elevenlabs"]
AudioFormat = Literal["wav", "mp3"]

CONTENT_TYPES: dict[AudioFormat, str] = {"wav": "audio/wav", "mp3": "audio/mpeg"}

_WHITESPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Text as it is synthesised and keyed: NFC, stripped, runs of whitespace collapsed to one space."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def cache_key(provider: str, voice: str, model: str, audio_format: str, text: str) -> str:
    """The sha256 hex naming one piece of audio; `text` must already be normalised."""
    material = json.dumps([provider, voice, model, audio_format, text], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """A voice a caller may ask for by `voice_id`."""

    voice_id: str
    provider: Provider
    default: bool


@dataclass(frozen=True, slots=True)
class SynthesisResult:
    """Audio for one text, and who made it: `provider` is the voice that answered, after any fallback."""

    key: str
    audio: bytes
    content_type: str
    provider: Provider
    voice: str
    model: str
    duration_s: float
    cached: bool
    fallback_reason: str | None = None

    @property
    def audio_format(self) -> AudioFormat:
        """The file format of `audio` ("wav" or "mp3")."""
        return "mp3" if self.content_type == CONTENT_TYPES["mp3"] else "wav"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One row of voice_cache; `path` is relative to the data directory."""

    key: str
    provider: Provider
    voice: str
    model: str
    text: str
    content_type: str
    path: str
    bytes: int
    duration_s: float | None
    hits: int
    created_at: datetime
    last_used_at: datetime


@dataclass(frozen=True, slots=True)
class AudioFile:
    """A cached audio file ready to be served: where it is, its media type and size in bytes."""

    key: str
    path: Path
    content_type: str
    bytes: int
    duration_s: float | None
    provider: Provider
    voice: str
