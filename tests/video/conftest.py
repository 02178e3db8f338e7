"""Helpers for the video tests: sessions over HTTP, images made with Pillow, crafted bad images, frame uploads."""

from __future__ import annotations

import base64
import io
import random
import struct
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.conftest import Actor, RunningServer

BASE_TIME = datetime(2024, 5, 4, 13, 0, 0, tzinfo=UTC)


async def new_session(client: httpx.AsyncClient, actor: Actor, driver_id: str | None = None) -> str:
    """Create a session for the driver (the actor's own by default) and return its id."""
    body = {"driverId": driver_id or actor.driver_id, "name": f"video {uuid.uuid4().hex[:6]}"}
    response = await client.post("/api/sessions", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def noise_image(fmt: str, size: tuple[int, int] = (96, 64), seed: int = 0, **save: Any) -> bytes:
    """An image of random pixels (so each seed gives different bytes), encoded by Pillow."""
    pixels = random.Random(seed).randbytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, fmt, **save)
    return out.getvalue()


def jpeg_of_about(target_bytes: int, seed: int = 0) -> bytes:
    """A JPEG of random pixels close to `target_bytes` long (noise compresses badly, so size tracks area)."""
    side = 64
    while True:
        data = noise_image("JPEG", (side, side), seed, quality=85)
        if len(data) >= target_bytes:
            return data
        side = int(side * max(1.05, (target_bytes / len(data)) ** 0.5))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny, well-formed PNG whose header declares `width` x `height` pixels (valid CRCs)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def frame_body(driver_id: str, session_id: str, image: bytes, at: datetime = BASE_TIME) -> dict[str, Any]:
    """The SPEC's JSON upload."""
    return {
        "driverId": driver_id,
        "sessionId": session_id,
        "frameData": base64.b64encode(image).decode(),
        "timestamp": at.isoformat().replace("+00:00", "Z"),
    }


async def post_base64(
    client: httpx.AsyncClient,
    actor_headers: dict[str, str],
    driver_id: str,
    session_id: str,
    image: bytes,
    at: datetime = BASE_TIME,
) -> httpx.Response:
    """POST /api/video with the JSON body."""
    return await client.post(
        "/api/video", json=frame_body(driver_id, session_id, image, at), headers=actor_headers
    )


async def post_binary(
    client: httpx.AsyncClient,
    actor_headers: dict[str, str],
    driver_id: str,
    session_id: str,
    image: bytes,
    at: datetime = BASE_TIME,
    content_type: str = "image/jpeg",
) -> httpx.Response:
    """POST /api/video with the raw image as the body and its fields as query parameters."""
    params = {"driverId": driver_id, "sessionId": session_id, "timestamp": at.isoformat()}
    headers = {**actor_headers, "Content-Type": content_type}
    return await client.post("/api/video", params=params, content=image, headers=headers)


def files_of_session(server: RunningServer, session_id: str) -> list[Path]:
    """Every file (temp files included) under DATA_DIR/video/<sessionId>."""
    folder = Path(server.settings.data_dir) / "video" / session_id
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def frame_rows(server: RunningServer, session_id: str) -> int:
    """How many video_frames rows the session has."""
    count: int = await server.services.database.pool.fetchval(
        "SELECT count(*) FROM video_frames WHERE session_id = $1", uuid.UUID(session_id)
    )
    return count


def at_second(seconds: float) -> datetime:
    """BASE_TIME plus some seconds."""
    return BASE_TIME + timedelta(seconds=seconds)
