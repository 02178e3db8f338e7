"""POST /api/voice/synthesize and GET /api/voice/audio/{key} over real HTTP with the local Piper voice."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import httpx
import pytest
from tests.conftest import TEST_JWT_SECRET, Team, World, assert_error, free_port, run_server
from tests.voice.conftest import MP3_FRAME, FakeElevenLabs

from pitbox.config import load_settings

LINE = "Turn four: you braked fifteen metres early and lost two tenths; trust the brakes to the board."


async def test_synthesize_returns_wav_and_repeats_come_from_the_cache(
    client: httpx.AsyncClient, team: Team
) -> None:
    first = await client.post("/api/voice/synthesize", json={"text": LINE}, headers=team.engineer.headers)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "audio/wav"
    assert first.headers["x-voice-provider"] == "piper"
    with wave.open(io.BytesIO(first.content)) as clip:
        seconds = clip.getnframes() / clip.getframerate()
    assert 2.0 < seconds < 12.0
    again = await client.post(
        "/api/voice/synthesize", json={"text": f"  {LINE} "}, headers=team.driver.headers
    )
    assert again.headers["x-voice-cached"] == "true"
    assert again.content == first.content


async def test_json_form_gives_a_url_that_serves_ranges(client: httpx.AsyncClient, team: Team) -> None:
    headers = {**team.engineer.headers, "Accept": "application/json"}
    described = await client.post("/api/voice/synthesize", json={"text": "Box this lap."}, headers=headers)
    assert described.status_code == 200, described.text
    body = described.json()
    assert body["url"].startswith("/api/voice/audio/") and body["contentType"] == "audio/wav"
    whole = await client.get(body["url"], headers=team.engineer.headers)
    assert whole.status_code == 200 and whole.headers["cache-control"].startswith("private")
    part = await client.get(body["url"], headers={**team.engineer.headers, "Range": "bytes=0-43"})
    assert part.status_code == 206 and part.content == whole.content[:44]
    # <audio src> cannot send headers: a token in the query works too.
    by_query = await client.get(f"{body['url']}?token={team.engineer.token}")
    assert by_query.status_code == 200 and by_query.content == whole.content
    assert_error(await client.get(body["url"]), 401)


async def test_clips_and_cache_hits_stay_within_the_team_that_made_them(
    client: httpx.AsyncClient, world: World, team: Team, other_team: Team
) -> None:
    # Issue 17, item 7: team B learned from `X-Voice-Cached: true` and the same `X-Voice-Key` what team A had
    # said, and any user fetched any clip by its key.
    words = f"Box box, {team.driver.email.split('@')[0]}, box this lap."
    said = await client.post("/api/voice/synthesize", json={"text": words}, headers=team.engineer.headers)
    assert said.status_code == 200 and said.headers["x-voice-cached"] == "false"
    a_key = said.headers["x-voice-key"]
    # Within team A: a team-mate gets the same clip, from the cache, and may fetch it.
    mate = await client.post("/api/voice/synthesize", json={"text": words}, headers=team.driver.headers)
    assert (mate.headers["x-voice-cached"], mate.headers["x-voice-key"]) == ("true", a_key)
    assert (
        await client.get(f"/api/voice/audio/{a_key}", headers=team.manager.headers)
    ).content == said.content
    # Team B says the same words: nothing tells it A said them, and A's clip is not found for it.
    guess = await client.post(
        "/api/voice/synthesize", json={"text": words}, headers=other_team.engineer.headers
    )
    assert guess.status_code == 200 and guess.headers["x-voice-cached"] == "false"
    b_key = guess.headers["x-voice-key"]
    assert b_key != a_key and guess.content == said.content  # the bytes may be shared, the clip is not
    team_b_key = await world.api_key(team_id=other_team.id, scopes=["voice:synthesize"])
    for intruder in (other_team.engineer.headers, other_team.driver.headers, {"X-API-Key": team_b_key}):
        assert_error(await client.get(f"/api/voice/audio/{a_key}", headers=intruder), 404)
    assert_error(await client.get(f"/api/voice/audio/{b_key}", headers=team.engineer.headers), 404)
    by_query = await client.get(f"/api/voice/audio/{a_key}?token={other_team.manager.token}")
    assert_error(by_query, 404)
    # One piece of audio on disk for the two clips.
    pool = world.services.database.pool
    assert await pool.fetchval("SELECT count(*) FROM voice_cache WHERE text = $1", words) == 1


async def test_a_pit_wall_clip_is_heard_by_the_drivers_teams_only(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    session = await client.post(
        "/api/sessions",
        json={"driverId": team.driver.driver_id, "name": "radio"},
        headers=team.engineer.headers,
    )
    message = await client.post(
        f"/api/sessions/{session.json()['id']}/pit-wall",
        json={"text": "Box, box."},
        headers=team.engineer.headers,
    )
    assert message.status_code == 201, message.text
    url = message.json()["audioUrl"]
    for reader in (team.driver, team.engineer, team.manager):
        assert (await client.get(url, headers=reader.headers)).status_code == 200
    for intruder in (team.driver2, other_team.engineer, other_team.manager):
        assert_error(await client.get(url, headers=intruder.headers), 404)


async def test_bad_voice_requests_get_422(client: httpx.AsyncClient, team: Team) -> None:
    h = team.engineer.headers
    for body in (
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 1001},
        {"text": "Hi", "voiceId": "nobody"},
        {"text": 5},
        {"voice": "x"},
        {"text": "Hi", "format": "ogg"},
    ):
        assert_error(await client.post("/api/voice/synthesize", json=body, headers=h), 422)
    assert_error(await client.get("/api/voice/audio/not-a-key", headers=h), 404)
    assert_error(await client.get("/api/voice/audio/" + "0" * 64, headers=h), 404)


async def test_voice_needs_a_caller_and_the_scope(
    client: httpx.AsyncClient, world: World, team: Team
) -> None:
    assert_error(await client.post("/api/voice/synthesize", json={"text": "Hi"}), 401)
    key = await world.api_key(driver_id=team.driver.driver_id, scopes=["telemetry:write"])
    assert_error(
        await client.post("/api/voice/synthesize", json={"text": "Hi"}, headers={"X-API-Key": key}), 403
    )


async def test_one_user_is_rate_limited(client: httpx.AsyncClient, world: World) -> None:
    user = await world.user("engineer")
    statuses = [
        (
            await client.post("/api/voice/synthesize", json={"text": "Push now."}, headers=user.headers)
        ).status_code
        for _ in range(25)
    ]
    assert statuses[0] == 200 and 429 in statuses


async def test_voices_lists_the_bundled_default(client: httpx.AsyncClient, team: Team) -> None:
    voices = (await client.get("/api/voice/voices", headers=team.driver.headers)).json()
    assert {"voiceId": "en_US-joe-medium", "provider": "piper", "default": True} in voices


async def test_a_server_configured_with_elevenlabs_api_key_speaks_through_elevenlabs(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, elevenlabs_server: FakeElevenLabs
) -> None:
    elevenlabs_server.reset()
    environment = {
        "DATABASE_URL": database_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "DATA_DIR": str(tmp_path),
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "LOG_LEVEL": "warning",
        "ELEVENLABS_API_KEY": "test-key",  # the one the stand-in accepts
        "ELEVENLABS_BASE_URL": elevenlabs_server.base_url,
        "INGEST_PROCESSES": "0",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    async with (
        run_server(load_settings(_env_file=None)) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        team = await World(server.services).team()
        spoken = await http.post("/api/voice/synthesize", json={"text": LINE}, headers=team.engineer.headers)
    assert spoken.status_code == 200, spoken.text
    assert spoken.headers["x-voice-provider"] == "elevenlabs"
    assert spoken.headers["content-type"] == "audio/mpeg" and spoken.content == MP3_FRAME * 40
    [request] = elevenlabs_server.requests
    assert request["api_key"] == "test-key" and request["body"]["text"] == LINE
