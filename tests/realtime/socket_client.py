"""A small test client for /ws over real loopback sockets (the `websockets` library)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import RunningServer

RECV_TIMEOUT = 20.0  # a safety net against a hung test, not an assertion on timing


async def open_socket(server: RunningServer, token: str | None = None, **options: Any) -> ClientConnection:
    """A socket on /ws, with `?token=` when given."""
    query = f"?token={token}" if token else ""
    options.setdefault(
        "compression", None
    )  # what the bench and dashboards measure: frames as the hub encodes them
    return await connect(f"{server.ws_url}/ws{query}", open_timeout=RECV_TIMEOUT, **options)


async def small_window_socket(server: RunningServer) -> socket.socket:
    """A connected TCP socket with a tiny receive buffer, so a client that stops reading pushes back at once.

    Loopback receive buffers autotune to tens of megabytes here; a real slow client on a real network is
    throttled by its window long before that.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.settings.port))
    return sock


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    """The next JSON frame the server sends (keep-alives skipped)."""
    while True:
        async with _timeout():
            frame: dict[str, Any] = orjson.loads(await ws.recv())
        if frame["type"] != "keepalive":
            return frame


async def expect(ws: ClientConnection, frame_type: str) -> dict[str, Any]:
    """The next frame, which must be of `frame_type`."""
    frame = await next_frame(ws)
    assert frame["type"] == frame_type, frame
    return frame


async def signed_in(server: RunningServer, token: str, **options: Any) -> ClientConnection:
    """A socket past its `authenticated` frame."""
    ws = await open_socket(server, token, **options)
    await expect(ws, "authenticated")
    return ws


async def subscribe(ws: ClientConnection, channel: str, **fields: Any) -> dict[str, Any]:
    """Send `subscribe` and return the answer (`subscribed` or `error`)."""
    await ws.send(orjson.dumps({"type": "subscribe", "channel": channel, **fields}).decode())
    return await next_frame(ws)


async def frames_until_closed(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every frame until the server closes the socket."""
    frames = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            frames.append(await next_frame(ws))
    return frames


def _timeout() -> Any:
    return asyncio.timeout(RECV_TIMEOUT)
