"""ElevenLabs text-to-speech over HTTP: POST /v1/text-to-speech/{voice_id}, with timeouts and retries.

Every failure is raised as `Unavailable` (code `elevenlabs_failed`, details with the status), so the
service can fall back to the local voice and say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import wave
from dataclasses import dataclass

import httpx
import structlog

from pitbox.errors import Unavailable
from pitbox.voice.errors import ElevenLabsFailed, UnknownVoice
from pitbox.voice.models import AudioFormat

DEFAULT_ELEVENLABS_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_ELEVENLABS_MODEL = "eleven_multilingual_v2"
# "George", a premade voice every account has; the one ElevenLabs' own quickstart uses.
DEFAULT_ELEVENLABS_VOICE = "JBFqnCBsd6RMkjVDRZzb"

# ElevenLabs voice ids are short alphanumeric strings; anything else cannot be one, so it is refused
# before it reaches a URL path.
ELEVENLABS_VOICE_ID = re.compile(r"[A-Za-z0-9]{8,64}")

MP3_OUTPUT_FORMAT = "mp3_44100_128"
MP3_BITS_PER_SECOND = 128_000
PCM_OUTPUT_FORMAT = "pcm_24000"
PCM_SAMPLE_RATE = 24_000

_RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ElevenLabsAudio:
    """Audio returned by ElevenLabs, already in the asked format (MP3, or PCM wrapped as WAV)."""

    audio: bytes
    audio_format: AudioFormat
    duration_s: float


def pcm16_to_wav(pcm: bytes, sample_rate: int) -> bytes:
    """Wrap raw 16-bit little-endian mono PCM in a WAV header."""
    sink = io.BytesIO()
    with wave.open(sink, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm[: len(pcm) - len(pcm) % 2])
    return sink.getvalue()


class ElevenLabsClient:
    """Calls ElevenLabs' text-to-speech with the given httpx client; retries 429, 5xx and timeouts."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str = DEFAULT_ELEVENLABS_BASE_URL,
        model_id: str = DEFAULT_ELEVENLABS_MODEL,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 4.0,
        request_timeout: httpx.Timeout | None = None,
        deadline_s: float = 30.0,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self.model_id = model_id
        self._max_attempts = max(1, max_attempts)
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._timeout = request_timeout or httpx.Timeout(15.0, connect=5.0)
        self._deadline_s = deadline_s

    async def synthesize(self, text: str, voice_id: str, audio_format: AudioFormat) -> ElevenLabsAudio:
        """Speech for `text` in `voice_id`: MP3 (mp3_44100_128) or WAV (from pcm_24000)."""
        if not ELEVENLABS_VOICE_ID.fullmatch(voice_id):
            raise UnknownVoice(f"unknown voice {voice_id!r}")
        output_format = MP3_OUTPUT_FORMAT if audio_format == "mp3" else PCM_OUTPUT_FORMAT
        try:
            async with asyncio.timeout(self._deadline_s):
                body = await self._post_with_retries(text, voice_id, output_format)
        except TimeoutError as exc:
            raise ElevenLabsFailed(
                "ElevenLabs did not answer in time", details={"reason": "deadline"}
            ) from exc
        if audio_format == "mp3":
            return ElevenLabsAudio(body, "mp3", duration_s=len(body) * 8 / MP3_BITS_PER_SECOND)
        wav = pcm16_to_wav(body, PCM_SAMPLE_RATE)
        return ElevenLabsAudio(wav, "wav", duration_s=(len(body) // 2) / PCM_SAMPLE_RATE)

    async def _post_with_retries(self, text: str, voice_id: str, output_format: str) -> bytes:
        url = f"{self._base_url}/v1/text-to-speech/{voice_id}"
        headers = {"xi-api-key": self._api_key, "accept": "audio/*", "content-type": "application/json"}
        payload = {"text": text, "model_id": self.model_id}
        failure: Unavailable | None = None
        for attempt in range(self._max_attempts):
            if attempt:
                await asyncio.sleep(self._delay_before_retry(attempt, failure))
            try:
                response = await self._http.post(
                    url,
                    params={"output_format": output_format},
                    headers=headers,
                    json=payload,
                    timeout=self._timeout,
                )
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                failure = ElevenLabsFailed(
                    "ElevenLabs could not be reached",
                    details={"reason": type(exc).__name__},
                )
                log.warning("elevenlabs_transport_error", attempt=attempt + 1, error=type(exc).__name__)
                continue
            if response.status_code == 200 and response.content:
                return response.content
            failure = ElevenLabsFailed(
                f"ElevenLabs answered {response.status_code}",
                details={"status": response.status_code, "retry_after": response.headers.get("retry-after")},
            )
            log.warning("elevenlabs_error_status", attempt=attempt + 1, status=response.status_code)
            if response.status_code not in _RETRYABLE_STATUSES:
                raise failure
        assert failure is not None
        raise failure

    def _delay_before_retry(self, attempt: int, failure: Unavailable | None) -> float:
        delay = self._backoff_s * 2 ** (attempt - 1)
        retry_after = failure.details.get("retry_after") if failure and failure.details else None
        if retry_after:
            # An HTTP-date Retry-After does not parse as seconds: keep our own backoff then.
            with contextlib.suppress(ValueError):
                delay = max(delay, float(retry_after))
        return float(min(delay, self._max_backoff_s))
