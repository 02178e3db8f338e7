"""Request heads (request line and headers) are bounded while they arrive, and the bind address is loopback
unless the container image says otherwise (issue 17, item 3)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from pathlib import Path

import httpx
import pytest

from pitbox.config import Settings
from pitbox.header_limit import MAX_HEADER_BYTES
from tests.conftest import REPO, RunningServer, Team

BIG = 64 * 1024 * 1024


async def _send_huge_header(port: int) -> tuple[bytes, int]:
    """Send `GET /health` with a 64 MiB header, a chunk at a time, reading the answer alongside; return the
    answer and how many bytes the server let us send before it closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    sent = 0
    answer = b""

    async def write() -> None:
        nonlocal sent
        head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
        await loop.sock_sendall(sock, head)
        sent += len(head)
        chunk = b"a" * (256 * 1024)
        with contextlib.suppress(OSError):  # the server closes on us: that is the point
            while sent < BIG:
                await loop.sock_sendall(sock, chunk)
                sent += len(chunk)

    async def read() -> None:
        nonlocal answer
        while True:
            try:
                part = await loop.sock_recv(sock, 65536)
            except OSError:
                return
            if not part:
                return
            answer += part

    writer = asyncio.create_task(write())
    await read()
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer
    sock.close()
    return answer, sent


async def test_a_64_mib_header_is_refused_with_431_before_it_is_read_whole(server: RunningServer) -> None:
    answer, sent = await _send_huge_header(server.settings.port)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:200]
    assert b'"code":"headers_too_large"' in rest
    # The connection was closed long before the 64 MiB were through (what is left is socket buffers).
    assert sent < 16 * 1024 * 1024, sent


async def test_a_head_just_under_the_bound_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Filler": "a" * (MAX_HEADER_BYTES - 2048)})
    assert response.status_code == 200


async def _raw_request(port: int, head: bytes, body: bytes = b"") -> int:
    """Send one request as raw bytes and return the answer's status (0: closed without an answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        with contextlib.suppress(OSError):  # the server may close while we still send: that is allowed
            writer.write(head + body)
            await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", status_line)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("shape", ["one header of n bytes", "many headers of 64 bytes", "a URL of n bytes"])
async def test_head_sizes_around_the_bound_never_get_a_5xx(
    server: RunningServer, team: Team, shape: str
) -> None:
    """Every kind of route (public, authenticated, ingest with a body, socket upgrade) with heads of sizes
    around the bound: answered as usual below it, 431 (or closed) above it, never a 5xx."""
    sizes = [1024, 16 * 1024, MAX_HEADER_BYTES - 4096, MAX_HEADER_BYTES + 1, 4 * MAX_HEADER_BYTES, 2**20]
    token = team.engineer.headers["Authorization"]
    upgrade = (
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    )
    routes = [
        ("GET", "/health", "", b""),
        ("GET", "/api/me", f"Authorization: {token}\r\n", b""),
        ("POST", "/api/telemetry", f"Authorization: {token}\r\nContent-Type: application/json\r\n", b"{}"),
        ("GET", "/ws", upgrade, b""),
    ]
    answers = {}
    for size in sizes:
        for method, path, fixed, body in routes:
            target, extra = path, ""
            if shape == "one header of n bytes":
                extra = f"X-Filler: {'a' * size}\r\n"
            elif shape == "many headers of 64 bytes":
                extra = "".join(f"X-F{i:05d}: {'b' * 53}\r\n" for i in range(size // 64))
            else:
                target = f"{path}?pad={'c' * size}"
            head = (
                f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{fixed}{extra}"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            answers[(method, path, size)] = await _raw_request(server.settings.port, head, body)
    server_errors = {key: status for key, status in answers.items() if status >= 500}
    assert not server_errors, server_errors
    over = {key: status for key, status in answers.items() if key[2] > MAX_HEADER_BYTES}
    assert set(over.values()) <= {0, 431}, over
    under = {key: status for key, status in answers.items() if key[2] < MAX_HEADER_BYTES}
    assert 0 not in under.values() and 431 not in under.values(), under


def test_pitbox_serve_binds_loopback_unless_told_and_the_image_binds_every_interface(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    assert Settings().host == "127.0.0.1"
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ENV HOST=0\.0\.0\.0 ", dockerfile, re.MULTILINE)
