"""Writing already-framed WebSocket bytes straight to a socket's transport, under the ASGI `send`.

Fan-out sends the same frame to every subscriber. Through ASGI each send re-encodes the text, builds a frame
and walks the middleware's send wrappers, once per subscriber and per message; here the frame is built once
(`ServerFrame.wire`) and each subscriber costs one `transport.write`. This is possible only where the server
exposes its connection: uvicorn's `websockets-sansio` protocol without per-message compression (the server
configuration of `pitbox serve`). Elsewhere `direct_transport` returns None and the ASGI send is used.

A direct write is made only while the ASGI send would have written at once: the handshake is done, no close
was sent or received, and the transport is not paused by its high-water mark. Otherwise the caller falls back
to the ASGI send, which waits for the transport to drain and reports a disconnect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

SERVER_SEND_EXTENSION = "pitbox.websocket.server_send"
"""Scope extension under which the outermost ASGI layer leaves the server's own `send` (server_send.py)."""


class FrameTransport(Protocol):
    """Where whole, already-framed WebSocket frames may be written without going through ASGI."""

    def ready(self) -> bool:
        """True when a write now goes out as the ASGI send would (open, not closing, not paused)."""
        ...

    def write(self, data: bytes) -> None:
        """Write whole frames; only after `ready()` said True."""
        ...

    async def wait_ready(self) -> bool:
        """Wait until the transport drains below its low-water mark; then `ready()` (False once closed)."""
        ...


class SansIOFrameTransport:
    """The transport of one uvicorn `websockets-sansio` connection (whose frames are not compressed)."""

    __slots__ = ("_protocol", "_conn", "_transport", "_writable")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        self._conn = protocol.conn
        self._transport = protocol.transport
        self._writable = protocol.writable

    def ready(self) -> bool:
        """Open (handshake done, no close either way), and the write buffer below its high-water mark."""
        protocol = self._protocol
        return (
            self._writable.is_set()
            and protocol.handshake_complete
            and not protocol.close_sent
            and not protocol.disconnected
            and self._conn.close_rcvd is None
            and not self._transport.is_closing()
        )

    def write(self, data: bytes) -> None:
        """Hand the bytes to the transport (it buffers what the kernel does not take at once)."""
        self._transport.write(data)

    async def wait_ready(self) -> bool:
        """Wait for uvicorn's `writable` (set on resume_writing and on connection loss), then say `ready()`."""
        await self._writable.wait()
        return self.ready()


def direct_transport(server_send: Callable[..., Any] | None) -> FrameTransport | None:
    """The frame transport behind the server's own ASGI `send`, when it is a connection this module can drive."""
    protocol = getattr(server_send, "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol):
        return None
    conn = getattr(protocol, "conn", None)
    if conn is None or conn.extensions or getattr(protocol, "transport", None) is None:
        return None  # compressed frames (permessage-deflate) must go through the protocol
    return SansIOFrameTransport(protocol)
