"""The voice tests' world: a database with the schema, the local voice, a fake ElevenLabs."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.conftest import create_database, drop_database

from pitbox.voice import VoiceService
from pitbox.voice.piper_voice import PiperEngine

MIGRATION = (
    Path(__file__).resolve().parents[2] / "src" / "pitbox" / "db" / "migrations" / "0001_initial_schema.sql"
)

# One MPEG-1 Layer III frame at 128 kbit/s, 44.1 kHz: a 4-byte header and 413 bytes of silence.
MP3_FRAME = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)


@pytest_asyncio.fixture(scope="session")
async def voice_pool(pg_server_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database of the run's PostgreSQL, with the project's schema applied."""
    url = await create_database(pg_server_url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=8)
    await pool.execute(MIGRATION.read_text(encoding="utf-8"))
    yield pool
    await pool.close()
    await drop_database(pg_server_url, url)


@pytest_asyncio.fixture(scope="session")
async def piper_engine() -> AsyncIterator[PiperEngine]:
    """The bundled local voice, loaded once for every test."""
    engine = PiperEngine()
    yield engine
    await asyncio.to_thread(engine.close)


@dataclass
class FakeElevenLabs:
    """A local server speaking ElevenLabs' text-to-speech API; tests script its answers and read its log."""

    base_url: str = ""
    mp3_frame: bytes = MP3_FRAME
    requests: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Statuses to answer, one per request, before answering 200 again."""
    mp3_frames: int = 40
    gate: asyncio.Event | None = None
    """When set, requests wait for this event before answering."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        """Forget requests and scripted answers."""
        self.requests.clear()
        self.statuses.clear()
        self.mp3_frames = 40
        self.gate = None
        self.arrived = asyncio.Event()

    async def text_to_speech(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(
            {
                "voice_id": request.path_params["voice_id"],
                "api_key": request.headers.get("xi-api-key"),
                "output_format": request.query_params.get("output_format"),
                "body": body,
            }
        )
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.statuses:
            status = self.statuses.pop(0)
            headers = {"retry-after": "0"} if status == 429 else {}
            return JSONResponse(
                {"detail": {"status": "scripted_failure"}}, status_code=status, headers=headers
            )
        if request.headers.get("xi-api-key") != "test-key":
            return JSONResponse({"detail": {"status": "invalid_api_key"}}, status_code=401)
        output_format = request.query_params.get("output_format", "mp3_44100_128")
        if output_format.startswith("pcm_"):
            sample_rate = int(output_format.split("_")[1])
            return Response(bytes(2 * sample_rate // 2), media_type="application/octet-stream")
        return Response(self.mp3_frame * self.mp3_frames, media_type="audio/mpeg")


@pytest_asyncio.fixture(scope="session")
async def elevenlabs_server() -> AsyncIterator[FakeElevenLabs]:
    """The fake ElevenLabs, served by uvicorn on a free port of 127.0.0.1."""
    fake = FakeElevenLabs()
    app = Starlette(routes=[Route("/v1/text-to-speech/{voice_id}", fake.text_to_speech, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Listening before uvicorn starts, so early connections wait in the backlog instead of being refused.
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    yield fake
    server.should_exit = True
    await serving
    sock.close()


ServiceFactory = Callable[..., Awaitable[VoiceService]]


@pytest_asyncio.fixture
async def make_voice_service(
    voice_pool: asyncpg.Pool,
    piper_engine: PiperEngine,
    elevenlabs_server: FakeElevenLabs,
    tmp_path: Path,
) -> AsyncIterator[ServiceFactory]:
    """Builds VoiceServices on an empty voice cache under this test's data dir; ElevenLabs is off unless
    a test passes `elevenlabs_api_key` (the fake accepts "test-key")."""
    await voice_pool.execute("TRUNCATE voice_cache")
    elevenlabs_server.reset()
    services: list[VoiceService] = []
    async with httpx.AsyncClient() as http:

        async def make(**settings: Any) -> VoiceService:
            settings.setdefault("elevenlabs_base_url", elevenlabs_server.base_url)
            settings.setdefault("elevenlabs_backoff_s", 0.01)
            service = VoiceService(voice_pool, tmp_path, http=http, piper=piper_engine, **settings)
            services.append(service)
            return service

        yield make
        for service in services:
            await service.close()


@pytest.fixture
def refusing_base_url() -> Iterator[str]:
    """A base URL on 127.0.0.1 where a socket is bound but not listening, so connections are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The data directory the services of this test write under."""
    return tmp_path
