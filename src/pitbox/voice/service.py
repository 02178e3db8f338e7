"""The voice rules: validate, pick a provider, serve from the cache or synthesise once, fall back, evict."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import httpx
import structlog

from pitbox.errors import NotFound, Unavailable
from pitbox.lifecycle import Lifecycle
from pitbox.voice.elevenlabs import (
    DEFAULT_ELEVENLABS_BASE_URL,
    DEFAULT_ELEVENLABS_MODEL,
    DEFAULT_ELEVENLABS_VOICE,
    ELEVENLABS_VOICE_ID,
    ElevenLabsClient,
)
from pitbox.voice.errors import ElevenLabsPaused, EmptyText, TextTooLong, UnknownVoice
from pitbox.voice.files import AudioFiles
from pitbox.voice.models import (
    CONTENT_TYPES,
    AudioFile,
    AudioFormat,
    CacheEntry,
    Provider,
    SynthesisResult,
    VoiceInfo,
    cache_key,
    normalise_text,
)
from pitbox.voice.piper_voice import DEFAULT_PIPER_VOICE, PiperEngine, wav_duration_s
from pitbox.voice.rate_limit import TokenBuckets
from pitbox.voice.store import VoiceCacheStore

_KEY = re.compile(r"[0-9a-f]{64}")

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Choice:
    """One way to say a text: provider, voice, model and file format; these (and the text) make the key."""

    provider: Provider
    voice: str
    model: str
    audio_format: AudioFormat


class VoiceService(Lifecycle):
    """Speaks text: ElevenLabs when an API key is set, else (or when it fails) the bundled Piper voice.

    Audio is cached as files under `data_dir` with a row each in voice_cache, capped at `cache_max_bytes`
    by evicting the least recently used; identical requests in flight share one synthesis.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        data_dir: Path,
        *,
        http: httpx.AsyncClient | None = None,
        elevenlabs_api_key: str | None = None,
        elevenlabs_base_url: str = DEFAULT_ELEVENLABS_BASE_URL,
        elevenlabs_model: str = DEFAULT_ELEVENLABS_MODEL,
        elevenlabs_voice: str = DEFAULT_ELEVENLABS_VOICE,
        elevenlabs_max_attempts: int = 3,
        elevenlabs_backoff_s: float = 0.5,
        elevenlabs_pause_s: float = 30.0,
        cache_max_bytes: int = 256 * 1024 * 1024,
        max_text_chars: int = 1000,
        rate_limit_per_minute: float = 60.0,
        rate_limit_burst: int = 20,
        piper: PiperEngine | None = None,
    ) -> None:
        if elevenlabs_api_key and http is None:
            raise ValueError("an httpx.AsyncClient is needed to call ElevenLabs")
        self._store = VoiceCacheStore(pool)
        self._files = AudioFiles(data_dir)
        self._owns_piper = piper is None
        self._piper = piper if piper is not None else PiperEngine()
        self._elevenlabs: ElevenLabsClient | None = None
        if elevenlabs_api_key and http is not None:
            self._elevenlabs = ElevenLabsClient(
                http,
                api_key=elevenlabs_api_key,
                base_url=elevenlabs_base_url,
                model_id=elevenlabs_model,
                max_attempts=elevenlabs_max_attempts,
                backoff_s=elevenlabs_backoff_s,
            )
        self._elevenlabs_voice = elevenlabs_voice
        self._elevenlabs_pause_s = elevenlabs_pause_s
        self._elevenlabs_paused_until = 0.0
        self._cache_max_bytes = cache_max_bytes
        self._max_text_chars = max_text_chars
        self._rate_limits = TokenBuckets(rate_limit_per_minute, rate_limit_burst)
        self._in_flight: dict[str, asyncio.Task[SynthesisResult]] = {}
        self.counters: Counter[str] = Counter()
        """Events since start: synthesized_<provider>, cache_hits, fallbacks, evicted."""

    def available_voices(self) -> list[VoiceInfo]:
        """The voice ids a caller may pass; the default is the one used when none is given."""
        local = [
            VoiceInfo(
                voice_id=v, provider="piper", default=self._elevenlabs is None and v == DEFAULT_PIPER_VOICE
            )
            for v in self._piper.voice_ids
        ]
        if self._elevenlabs is None:
            return local
        return [VoiceInfo(voice_id=self._elevenlabs_voice, provider="elevenlabs", default=True), *local]

    async def synthesize(
        self,
        text: str,
        voice_id: str | None = None,
        *,
        user_key: str | None = None,
        audio_format: AudioFormat | None = None,
    ) -> SynthesisResult:
        """Audio for `text` in `voice_id` (None: the default voice), from the cache when it was said before.

        `user_key` names the caller for the rate limit (None: an internal caller, not limited).
        `audio_format` is a preference: ElevenLabs can give "mp3" or "wav"; Piper always gives "wav".
        Raises Invalid (empty, too long, unknown voice), RateLimited, or Unavailable if no voice answers.
        """
        spoken = self._validated_text(text)
        choices = self._choices(voice_id, audio_format)
        if user_key is not None:
            self._rate_limits.take(user_key)
        fallback_reason: str | None = None
        for position, choice in enumerate(choices):
            try:
                result = await self._cached_or_made(choice, spoken)
            except Unavailable as exc:
                if position == len(choices) - 1:
                    raise
                fallback_reason = exc.message
                self.counters["fallbacks"] += 1
                self._pause_remote_after(exc)
                log.warning("voice_fallback", failed=choice.provider, reason=exc.message, details=exc.details)
                continue
            return result if fallback_reason is None else replace(result, fallback_reason=fallback_reason)
        raise AssertionError("unreachable: there is always a local choice")

    async def get_audio(self, key: str) -> AudioFile:
        """The cached file named `key`, for serving by URL; NotFound when unknown or evicted."""
        if not _KEY.fullmatch(key):
            raise NotFound("no such audio")
        entry = await self._store.use(key, count_hit=False)
        if entry is None:
            raise NotFound("no such audio")
        path = self._files.absolute(entry.path)
        size = await asyncio.to_thread(self._files.size, entry.path)
        if size != entry.bytes:
            await self._store.forget(key)
            raise NotFound("no such audio")
        return AudioFile(
            key=key,
            path=path,
            content_type=entry.content_type,
            bytes=entry.bytes,
            duration_s=entry.duration_s,
            provider=entry.provider,
            voice=entry.voice,
        )

    async def warm_up(self) -> None:
        """Load the local voice model now, so the first request does not pay for it."""
        await self._piper.warm_up()

    async def close(self) -> None:
        """Let syntheses in flight finish, then stop the local voice's worker if this service made it."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        if self._owns_piper:
            await asyncio.to_thread(self._piper.close)

    def _validated_text(self, text: str) -> str:
        # A cheap bound before normalising, so a huge body costs nothing.
        if len(text) > 8 * self._max_text_chars:
            raise TextTooLong(
                f"text is longer than {self._max_text_chars} characters",
                details={"max_chars": self._max_text_chars},
            )
        spoken = normalise_text(text)
        if not spoken:
            raise EmptyText("text is empty")
        if len(spoken) > self._max_text_chars:
            raise TextTooLong(
                f"text is longer than {self._max_text_chars} characters",
                details={"max_chars": self._max_text_chars, "chars": len(spoken)},
            )
        return spoken

    def _choices(self, voice_id: str | None, audio_format: AudioFormat | None) -> list[_Choice]:
        local = _Choice("piper", DEFAULT_PIPER_VOICE, "", "wav")
        if voice_id is not None and voice_id in self._piper.voice_ids:
            return [_Choice("piper", voice_id, "", "wav")]
        if self._elevenlabs is not None and (voice_id is None or ELEVENLABS_VOICE_ID.fullmatch(voice_id)):
            remote = _Choice(
                "elevenlabs",
                voice_id or self._elevenlabs_voice,
                self._elevenlabs.model_id,
                audio_format or "mp3",
            )
            return [remote, local]
        if voice_id is None:
            return [local]
        raise UnknownVoice(
            f"unknown voice {voice_id!r}",
            details={"voices": [v.voice_id for v in self.available_voices()]},
        )

    def _pause_remote_after(self, failure: Unavailable) -> None:
        # Cached ElevenLabs audio is still served while paused; only new text skips straight to the local
        # voice instead of paying for retries first. A refused key will not fix itself, so it waits longer.
        if failure.code != "elevenlabs_failed":
            return
        status = failure.details.get("status") if isinstance(failure.details, dict) else None
        pause = self._elevenlabs_pause_s * (10 if status in (401, 403) else 1)
        self._elevenlabs_paused_until = max(self._elevenlabs_paused_until, time.monotonic() + pause)

    async def _cached_or_made(self, choice: _Choice, text: str) -> SynthesisResult:
        key = cache_key(choice.provider, choice.voice, choice.model, choice.audio_format, text)
        task = self._in_flight.get(key)
        if task is None:
            hit = await self._from_cache(key)
            if hit is not None:
                return hit
            task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(self._made_once(choice, text, key), name=f"voice:{key[:12]}")
            self._in_flight[key] = task
            task.add_done_callback(self._forget_in_flight)
        # Shielded: a caller that goes away does not cancel the synthesis others are waiting for.
        return await asyncio.shield(task)

    def _forget_in_flight(self, task: asyncio.Task[SynthesisResult]) -> None:
        for key, running in list(self._in_flight.items()):
            if running is task:
                del self._in_flight[key]
        if not task.cancelled():
            task.exception()  # retrieved here so an error nobody awaited is not reported as lost

    async def _from_cache(self, key: str) -> SynthesisResult | None:
        entry = await self._store.use(key)
        if entry is None:
            return None
        audio = await asyncio.to_thread(self._files.read, entry.path, entry.bytes)
        if audio is None:
            log.warning("voice_cache_file_missing", key=key, path=entry.path)
            await self._store.forget(key)
            return None
        self.counters["cache_hits"] += 1
        return _result_of(entry, audio)

    async def _made_once(self, choice: _Choice, text: str, key: str) -> SynthesisResult:
        # Another process, or a task that finished between our lookup and now, may have made it already.
        hit = await self._from_cache(key)
        if hit is not None:
            return hit
        started = time.perf_counter()
        if choice.provider == "piper":
            audio = await self._piper.synthesize_wav(text, choice.voice)
            duration_s = wav_duration_s(audio)
        else:
            assert self._elevenlabs is not None
            if time.monotonic() < self._elevenlabs_paused_until:
                raise ElevenLabsPaused("ElevenLabs is paused after a recent failure")
            remote = await self._elevenlabs.synthesize(text, choice.voice, choice.audio_format)
            audio, duration_s = remote.audio, remote.duration_s
        self.counters[f"synthesized_{choice.provider}"] += 1
        path = self._files.relative_path(key, choice.audio_format)
        await asyncio.to_thread(self._files.write, path, audio)
        content_type = CONTENT_TYPES[choice.audio_format]
        await self._store.record(
            key=key,
            provider=choice.provider,
            voice=choice.voice,
            model=choice.model,
            text=text,
            content_type=content_type,
            path=path,
            size=len(audio),
            duration_s=duration_s,
        )
        await self._evict(keep_key=key)
        log.info(
            "voice_synthesized",
            provider=choice.provider,
            voice=choice.voice,
            key=key,
            bytes=len(audio),
            duration_s=round(duration_s, 2),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return SynthesisResult(
            key=key,
            audio=audio,
            content_type=content_type,
            provider=choice.provider,
            voice=choice.voice,
            model=choice.model,
            duration_s=duration_s,
            cached=False,
        )

    async def _evict(self, keep_key: str) -> None:
        paths = await self._store.evict_over(self._cache_max_bytes, keep_key=keep_key)
        if paths:
            await asyncio.to_thread(self._delete_files, paths)
            self.counters["evicted"] += len(paths)
            log.info("voice_cache_evicted", files=len(paths))

    def _delete_files(self, paths: list[str]) -> None:
        for path in paths:
            self._files.delete(path)


def _result_of(entry: CacheEntry, audio: bytes) -> SynthesisResult:
    return SynthesisResult(
        key=entry.key,
        audio=audio,
        content_type=entry.content_type,
        provider=entry.provider,
        voice=entry.voice,
        model=entry.model,
        duration_s=entry.duration_s or 0.0,
        cached=True,
    )
