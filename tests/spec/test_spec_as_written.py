"""SPEC.md as written: every request it shows, sent exactly as it shows it, gets a 2xx and does what it says.

The requests come from `SpecClient`, which knows only SPEC.md. The test around it may use the rest of the API to
set the scene (a team, a login, a track) and to see each request's effect (the sample read back, the frame
read, the feedback listed, the session listed); live frames arrive on the channels SPEC.md names, over
`/ws?token=<jwt>`. The server speaks through a local stand-in for ElevenLabs, as SPEC.md's voice route says.
"""

from __future__ import annotations

import asyncio
import base64
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import (
    RunningServer,
    World,
    create_database,
    drop_database,
    free_port,
    make_settings,
    run_server,
)
from tests.spec.spec_client import SpecClient, SpecSocket

DRIVER_PASSWORD = "apex-and-exit-2023"
ELEVENLABS_KEY = "el-test-key"
RACHEL = "21m00Tcm4TlvDq8ikWAM"  # an ElevenLabs voice id, as a client of SPEC.md would send it
# One MPEG-1 Layer III frame (128 kbit/s, 44.1 kHz): a 4-byte header and 413 bytes of silence.
MP3_FRAME = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)
SAFETY_NET_S = 20.0  # against a hung test, not a timing assertion


async def text_to_speech(request: Request) -> Response:
    """ElevenLabs' POST /v1/text-to-speech/{voice_id}: MP3 audio for a known key."""
    if request.headers.get("xi-api-key") != ELEVENLABS_KEY:
        return JSONResponse({"detail": {"status": "invalid_api_key"}}, status_code=401)
    request.app.state.voices.append(request.path_params["voice_id"])
    return Response(MP3_FRAME * 40, media_type="audio/mpeg")


@dataclass
class SpecWorld:
    """A server that speaks through the stand-in ElevenLabs, a driver of a team logged in, and a track."""

    server: RunningServer
    http: httpx.AsyncClient
    spec: SpecClient
    driver_id: str
    engineer_headers: dict[str, str]
    track_id: str
    voices_asked: list[str]


@pytest.fixture(scope="module")
async def world(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SpecWorld]:
    elevenlabs = Starlette(routes=[Route("/v1/text-to-speech/{voice_id}", text_to_speech, methods=["POST"])])
    elevenlabs.state.voices = []
    port = free_port()
    fake = uvicorn.Server(
        uvicorn.Config(elevenlabs, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    serving = asyncio.create_task(fake.serve())
    while not fake.started:
        if serving.done():
            serving.result()
            raise RuntimeError("the stand-in ElevenLabs did not start")
        await asyncio.sleep(0.01)
    url = await create_database(pg_server_url)
    settings = make_settings(
        url,
        Path(tmp_path_factory.mktemp("spec")),
        elevenlabs_api_key=ELEVENLABS_KEY,
        elevenlabs_base_url=f"http://127.0.0.1:{port}",
    )
    try:
        async with run_server(settings) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            team = await World(server.services).team()
            driver = await World(server.services).user("driver", team.id, password=DRIVER_PASSWORD)
            login = await http.post(
                "/api/auth/login", json={"email": driver.email, "password": DRIVER_PASSWORD}
            )
            assert login.status_code == 200, login.text
            track = await http.post(
                "/api/tracks",
                json={"name": f"Brands Hatch {uuid.uuid4().hex[:4]}"},
                headers=team.manager.headers,
            )
            assert track.status_code == 201, track.text
            assert driver.driver_id is not None
            yield SpecWorld(
                server,
                http,
                SpecClient(http, login.json()["accessToken"]),
                driver.driver_id,
                team.engineer.headers,
                track.json()["id"],
                elevenlabs.state.voices,
            )
    finally:
        await drop_database(pg_server_url, url)
        fake.should_exit = True
        await serving


async def new_session(world: SpecWorld) -> str:
    response = await world.spec.create_session(world.driver_id, "Thursday practice")
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def subscribed(socket: SpecSocket, channel: str) -> None:
    """Subscribe, and wait until the server says so (so nothing published after it is missed)."""
    await socket.subscribe(channel)
    async with asyncio.timeout(SAFETY_NET_S):
        answer = await socket.next_about(channel)
    assert answer["type"] == "subscribed", answer


async def live(socket: SpecSocket, channel: str) -> dict[str, Any]:
    async with asyncio.timeout(SAFETY_NET_S):
        return await socket.next_about(channel)


def now_iso() -> str:
    """Now as SPEC.md writes its timestamp (2023-07-17T12:34:56Z)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def camera_frame() -> str:
    """A small JPEG from the car's camera, base64-encoded as SPEC.md's frameData."""
    out = io.BytesIO()
    Image.new("RGB", (64, 36), (40, 90, 160)).save(out, "JPEG", quality=80)
    return base64.b64encode(out.getvalue()).decode()


async def test_health_and_status_answer(world: SpecWorld) -> None:
    health = await world.spec.health_check()
    assert health.status_code == 200 and health.json()["status"] == "ok"
    status = await world.spec.status()
    assert status.status_code == 200, status.text
    assert status.json()["identity"]["driverId"] == world.driver_id


async def test_a_created_session_is_listed_for_its_driver(world: SpecWorld) -> None:
    created = await world.spec.create_session(world.driver_id, "Race 2 warm-up", track_id=world.track_id)
    assert created.status_code == 201, created.text
    assert created.json()["trackId"] == world.track_id
    listed = await world.spec.sessions_of_driver(world.driver_id)
    assert listed.status_code == 200, listed.text
    sessions = listed.json()
    assert isinstance(sessions, list) and sessions[0]["id"] == created.json()["id"]  # newest first


async def test_telemetry_data_is_stored_and_streamed_on_the_drivers_and_sessions_channels(
    world: SpecWorld,
) -> None:
    session_id = await new_session(world)
    data = {"speed": 120.5, "rpm": 7500, "gear": 4, "throttle": 0.75, "brake": 0.0, "steering": -0.1}
    async with world.spec.websocket(world.server.ws_url) as socket:
        await subscribed(socket, f"telemetry:{world.driver_id}")
        await subscribed(socket, f"session:{session_id}")
        stored = await world.spec.telemetry_data(world.driver_id, session_id, data)
        assert stored.status_code == 201, stored.text
        by_driver = await live(socket, f"telemetry:{world.driver_id}")
        by_session = await live(socket, f"session:{session_id}")
    for message in (by_driver, by_session):
        assert message["data"]["columns"]["speed"] == [120.5] and message["data"]["columns"]["rpm"] == [7500]
    read = await world.http.get(f"/api/sessions/{session_id}/telemetry", headers=world.engineer_headers)
    columns = read.json()["columns"]
    assert {name: columns[name] for name in data} == {name: [value] for name, value in data.items()}
    assert columns["t"][0] >= 0  # stamped with the time it arrived


async def test_unsubscribing_stops_a_channel_and_leaves_the_others(world: SpecWorld) -> None:
    session_id = await new_session(world)
    async with world.spec.websocket(world.server.ws_url) as socket:
        await subscribed(socket, f"telemetry:{world.driver_id}")
        await subscribed(socket, f"session:{session_id}")
        await socket.unsubscribe(f"telemetry:{world.driver_id}")
        async with asyncio.timeout(SAFETY_NET_S):
            assert (await socket.next_about(f"telemetry:{world.driver_id}"))["type"] == "unsubscribed"
        stored = await world.spec.telemetry_data(world.driver_id, session_id, {"speed": 98.2, "gear": 3})
        assert stored.status_code == 201, stored.text
        # A sample goes out on the driver's channel first, then the session's: only the session's comes now.
        async with asyncio.timeout(SAFETY_NET_S):
            first = await socket.receive()
    assert first["channel"] == f"session:{session_id}", first


async def test_a_video_frame_is_stored_readable_and_streamed(world: SpecWorld) -> None:
    session_id = await new_session(world)
    frame = camera_frame()
    async with world.spec.websocket(world.server.ws_url) as socket:
        await subscribed(socket, f"video:{world.driver_id}")
        stored = await world.spec.video_frame(world.driver_id, session_id, frame, now_iso())
        assert stored.status_code == 201, stored.text
        streamed = await live(socket, f"video:{world.driver_id}")
    assert streamed["data"]["frame"]["id"] == stored.json()["id"]
    image = await world.http.get(f"/api/video/{stored.json()['id']}", headers=world.engineer_headers)
    assert image.status_code == 200 and image.content == base64.b64decode(frame)


async def test_ai_feedback_for_a_telemetry_object_is_stored_and_sent_to_the_driver(world: SpecWorld) -> None:
    session_id = await new_session(world)
    data = {"speed": 120.5, "rpm": 7500, "gear": 4, "throttle": 0.75, "brake": 0.0, "steering": -0.1}
    async with world.spec.websocket(world.server.ws_url) as socket:
        await subscribed(socket, f"ai:{world.driver_id}")
        assert (await world.spec.telemetry_data(world.driver_id, session_id, data)).status_code == 201
        answered = await world.spec.ai_feedback(world.driver_id, session_id, data)
        assert answered.status_code == 201, answered.text
        pushed = await live(socket, f"ai:{world.driver_id}")
    feedback = answered.json()
    assert pushed["data"]["feedback"]["id"] == feedback["id"]
    assert feedback["summary"] and feedback["items"] == []  # no lap completed yet: it says so
    listed = await world.http.get(f"/api/sessions/{session_id}/feedback", headers=world.engineer_headers)
    assert [item["id"] for item in listed.json()] == [feedback["id"]]


@pytest.mark.parametrize("voice_id", [RACHEL, None])
async def test_voice_synthesis_returns_audio(world: SpecWorld, voice_id: str | None) -> None:
    spoken = await world.spec.voice_synthesis("Box this lap, box box.", voice_id)
    assert spoken.status_code == 200, spoken.text
    assert spoken.headers["content-type"] == "audio/mpeg"
    assert spoken.content.startswith(MP3_FRAME[:4]) and len(spoken.content) >= len(MP3_FRAME)
    if voice_id is not None:
        assert world.voices_asked[-1] == voice_id
