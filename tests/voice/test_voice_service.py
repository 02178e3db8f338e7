"""The voice service against a real PostgreSQL, the real Piper voice and a local fake of ElevenLabs."""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from pitbox.errors import Invalid, NotFound, RateLimited

if TYPE_CHECKING:
    from tests.voice.conftest import FakeElevenLabs, ServiceFactory

COACHING_LINE = "Brake a little later into turn three and carry more speed onto the back straight."


def wav_seconds(audio: bytes) -> tuple[float, int, int]:
    """(duration, channels, sample width) of WAV bytes; raises if they are not a WAV file."""
    with wave.open(io.BytesIO(audio), "rb") as wav:
        return wav.getnframes() / wav.getframerate(), wav.getnchannels(), wav.getsampwidth()


async def test_local_voice_speaks_a_valid_wav_of_plausible_length(
    make_voice_service: ServiceFactory, data_dir: Path, voice_pool: asyncpg.Pool
) -> None:
    service = await make_voice_service()
    assert len(COACHING_LINE.split()) == 15

    result = await service.synthesize(COACHING_LINE)

    seconds, channels, sample_width = wav_seconds(result.audio)
    assert 2.0 <= seconds <= 10.0
    assert (channels, sample_width) == (1, 2)
    assert result.duration_s == pytest.approx(seconds)
    assert (result.provider, result.voice, result.content_type, result.cached) == (
        "piper",
        "en_US-joe-medium",
        "audio/wav",
        False,
    )
    stored = data_dir / "voice" / result.key[:2] / f"{result.key}.wav"
    assert stored.read_bytes() == result.audio
    row = await voice_pool.fetchrow("SELECT bytes, hits, text FROM voice_cache WHERE key = $1", result.key)
    assert (row["bytes"], row["hits"], row["text"]) == (len(result.audio), 0, COACHING_LINE)


async def test_repeated_text_is_a_cache_hit_with_identical_bytes(
    make_voice_service: ServiceFactory, voice_pool: asyncpg.Pool
) -> None:
    service = await make_voice_service()
    first = await service.synthesize(COACHING_LINE)

    again = await service.synthesize(COACHING_LINE)
    respaced = await service.synthesize("  " + COACHING_LINE.replace(" ", "   \n") + "  ")

    assert again.cached and respaced.cached
    assert again.audio == first.audio == respaced.audio
    assert again.key == first.key == respaced.key
    assert await voice_pool.fetchval("SELECT hits FROM voice_cache WHERE key = $1", first.key) == 2
    assert service.counters["synthesized_piper"] == 1


async def test_a_new_service_finds_audio_cached_by_an_earlier_one(make_voice_service: ServiceFactory) -> None:
    first = await (await make_voice_service()).synthesize("Box this lap.")

    later = await (await make_voice_service()).synthesize("Box this lap.")

    assert later.cached and later.audio == first.audio


async def test_cached_audio_is_served_by_key(make_voice_service: ServiceFactory) -> None:
    service = await make_voice_service()
    result = await service.synthesize("Fuel for three more laps.")

    audio = await service.get_audio(result.key)

    assert audio.path.read_bytes() == result.audio
    assert (audio.content_type, audio.bytes, audio.provider) == ("audio/wav", len(result.audio), "piper")
    with pytest.raises(NotFound):
        await service.get_audio("0" * 64)
    with pytest.raises(NotFound):
        await service.get_audio("../../etc/passwd")


async def test_a_lost_audio_file_is_synthesised_again(make_voice_service: ServiceFactory) -> None:
    service = await make_voice_service()
    result = await service.synthesize("Tyres are coming in.")
    (await service.get_audio(result.key)).path.unlink()

    with pytest.raises(NotFound):
        await service.get_audio(result.key)
    again = await service.synthesize("Tyres are coming in.")

    assert not again.cached
    assert (await service.get_audio(result.key)).path.exists()


async def test_elevenlabs_answers_with_mp3_when_a_key_is_set(
    make_voice_service: ServiceFactory, elevenlabs_server: FakeElevenLabs
) -> None:
    mp3_frame = elevenlabs_server.mp3_frame
    service = await make_voice_service(elevenlabs_api_key="test-key", elevenlabs_model="eleven_turbo_v2_5")

    result = await service.synthesize(COACHING_LINE)

    assert (result.provider, result.content_type, result.model) == (
        "elevenlabs",
        "audio/mpeg",
        "eleven_turbo_v2_5",
    )
    assert result.audio == mp3_frame * 40 and result.audio[:2] == b"\xff\xfb"
    assert result.duration_s == pytest.approx(40 * 1152 / 44100, rel=0.01)
    assert elevenlabs_server.requests == [
        {
            "voice_id": "JBFqnCBsd6RMkjVDRZzb",
            "api_key": "test-key",
            "output_format": "mp3_44100_128",
            "body": {"text": COACHING_LINE, "model_id": "eleven_turbo_v2_5"},
        }
    ]
    assert (await service.synthesize(COACHING_LINE)).cached
    assert len(elevenlabs_server.requests) == 1


async def test_elevenlabs_gives_wav_when_wav_is_asked_for(
    make_voice_service: ServiceFactory, elevenlabs_server: FakeElevenLabs
) -> None:
    service = await make_voice_service(elevenlabs_api_key="test-key")

    result = await service.synthesize(
        "Gap to the car ahead is one second.", "CwhRBWXzGAHq8TQ4Fs17", audio_format="wav"
    )

    assert (result.provider, result.voice, result.content_type) == (
        "elevenlabs",
        "CwhRBWXzGAHq8TQ4Fs17",
        "audio/wav",
    )
    assert wav_seconds(result.audio)[0] == pytest.approx(0.5)
    assert elevenlabs_server.requests[0]["output_format"] == "pcm_24000"


@pytest.mark.parametrize(
    ("statuses", "requests_made"),
    [([401], 1), ([429, 429, 429], 3), ([500, 502, 503], 3)],
    ids=["unauthorized-not-retried", "rate-limited", "server-errors"],
)
async def test_failing_elevenlabs_falls_back_to_the_local_voice(
    make_voice_service: ServiceFactory,
    elevenlabs_server: FakeElevenLabs,
    statuses: list[int],
    requests_made: int,
) -> None:
    service = await make_voice_service(elevenlabs_api_key="test-key")
    elevenlabs_server.statuses.extend(statuses)

    result = await service.synthesize(COACHING_LINE)

    assert (result.provider, result.voice, result.content_type) == ("piper", "en_US-joe-medium", "audio/wav")
    assert result.fallback_reason == f"ElevenLabs answered {statuses[-1]}"
    assert wav_seconds(result.audio)[0] > 2.0
    assert len(elevenlabs_server.requests) == requests_made


async def test_after_a_failure_new_text_skips_elevenlabs_but_its_cached_audio_is_still_served(
    make_voice_service: ServiceFactory, elevenlabs_server: FakeElevenLabs
) -> None:
    service = await make_voice_service(elevenlabs_api_key="test-key")
    remote = await service.synthesize("Blue flag, let the leader through.")
    elevenlabs_server.statuses.extend([500, 500, 500])
    await service.synthesize("Rain is expected in ten minutes.")
    requests_before = len(elevenlabs_server.requests)

    fresh = await service.synthesize("Switch to the wet line.")
    cached = await service.synthesize("Blue flag, let the leader through.")

    assert (fresh.provider, fresh.fallback_reason) == ("piper", "ElevenLabs is paused after a recent failure")
    assert (cached.provider, cached.cached, cached.audio) == ("elevenlabs", True, remote.audio)
    assert len(elevenlabs_server.requests) == requests_before


async def test_elevenlabs_is_retried_after_one_server_error(
    make_voice_service: ServiceFactory, elevenlabs_server: FakeElevenLabs
) -> None:
    service = await make_voice_service(elevenlabs_api_key="test-key")
    elevenlabs_server.statuses.append(503)

    result = await service.synthesize("Push now, the tyres are in.")

    assert result.provider == "elevenlabs" and result.fallback_reason is None
    assert len(elevenlabs_server.requests) == 2


async def test_unreachable_elevenlabs_falls_back_to_the_local_voice(
    make_voice_service: ServiceFactory, refusing_base_url: str
) -> None:
    service = await make_voice_service(elevenlabs_api_key="test-key", elevenlabs_base_url=refusing_base_url)

    result = await service.synthesize("Pit window is open.")

    assert result.provider == "piper"
    assert result.fallback_reason == "ElevenLabs could not be reached"


async def test_concurrent_identical_requests_synthesise_once(
    make_voice_service: ServiceFactory, elevenlabs_server: FakeElevenLabs
) -> None:
    service = await make_voice_service(elevenlabs_api_key="test-key")
    elevenlabs_server.gate = asyncio.Event()
    callers = [
        asyncio.create_task(service.synthesize("Watch the yellow flag in sector two.")) for _ in range(5)
    ]

    # Without single-flight all five requests reach the server; with it, only one does and we let it answer.
    await elevenlabs_server.arrived.wait()
    await asyncio.sleep(0)
    elevenlabs_server.gate.set()
    results = await asyncio.gather(*callers)

    assert len(elevenlabs_server.requests) == 1
    assert len({r.audio for r in results}) == 1 and len({r.key for r in results}) == 1


async def test_concurrent_identical_local_requests_synthesise_once(
    make_voice_service: ServiceFactory,
) -> None:
    service = await make_voice_service()

    results = await asyncio.gather(*(service.synthesize("Save fuel through turn five.") for _ in range(6)))

    assert service.counters["synthesized_piper"] == 1
    assert len({r.audio for r in results}) == 1


async def test_eviction_keeps_the_cache_under_its_cap_dropping_the_least_recently_used(
    make_voice_service: ServiceFactory,
    elevenlabs_server: FakeElevenLabs,
    voice_pool: asyncpg.Pool,
    data_dir: Path,
) -> None:
    one_file = len(elevenlabs_server.mp3_frame) * elevenlabs_server.mp3_frames
    cap = 2 * one_file + one_file // 2
    service = await make_voice_service(elevenlabs_api_key="test-key", cache_max_bytes=cap)
    oldest = await service.synthesize("Lap one.")
    kept = await service.synthesize("Lap two.")
    await service.synthesize("Lap one.")  # now "Lap two." is the least recently used

    newest = await service.synthesize("Lap three.")

    assert await voice_pool.fetchval("SELECT sum(bytes) FROM voice_cache") <= cap
    remaining = {row["key"] for row in await voice_pool.fetch("SELECT key FROM voice_cache")}
    assert remaining == {oldest.key, newest.key}
    assert not (data_dir / "voice" / kept.key[:2] / f"{kept.key}.mp3").exists()
    assert sorted(p.name for p in (data_dir / "voice").rglob("*.mp3")) == sorted(
        f"{k}.mp3" for k in (oldest.key, newest.key)
    )
    with pytest.raises(NotFound):
        await service.get_audio(kept.key)


@pytest.mark.parametrize(
    ("text", "voice_id", "code"),
    [
        ("", None, "empty_text"),
        (" \n\t  ", None, "empty_text"),
        ("x" * 1001, None, "text_too_long"),
        ("Box box.", "no-such-voice", "unknown_voice"),
        ("Box box.", "JBFqnCBsd6RMkjVDRZzb", "unknown_voice"),  # an ElevenLabs voice, but no key is set
        ("?!...", None, "nothing_to_say"),
    ],
    ids=["empty", "whitespace", "too-long", "unknown-voice", "remote-voice-without-key", "punctuation-only"],
)
async def test_unusable_requests_are_invalid(
    make_voice_service: ServiceFactory, text: str, voice_id: str | None, code: str
) -> None:
    service = await make_voice_service()

    with pytest.raises(Invalid) as raised:
        await service.synthesize(text, voice_id)

    assert raised.value.code == code


async def test_malformed_elevenlabs_voice_id_is_invalid_even_with_a_key(
    make_voice_service: ServiceFactory,
) -> None:
    service = await make_voice_service(elevenlabs_api_key="test-key")

    with pytest.raises(Invalid):
        await service.synthesize("Box box.", "../../v1/user")


async def test_a_user_over_the_rate_limit_is_told_when_to_retry(make_voice_service: ServiceFactory) -> None:
    service = await make_voice_service(rate_limit_per_minute=6, rate_limit_burst=2)
    await service.synthesize("Clear behind.", user_key="driver-1")
    await service.synthesize("Clear behind.", user_key="driver-1")

    with pytest.raises(RateLimited) as raised:
        await service.synthesize("Clear behind.", user_key="driver-1")

    assert 0 < raised.value.retry_after <= 10
    assert (await service.synthesize("Clear behind.", user_key="driver-2")).cached
    assert (await service.synthesize("Clear behind.")).cached  # internal callers are not limited
