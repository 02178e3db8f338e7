"""The outgoing side of one socket: a bounded queue of encoded frames and the one task that writes them."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from pitbox.realtime.frames import CLOSE_TOO_SLOW, error_frame

log = structlog.get_logger(__name__)

SendText = Callable[[str], Awaitable[None]]
CloseSocket = Callable[[int, str], Awaitable[None]]


class Outbox:
    """Frames waiting for one socket. `put` never blocks: a full queue marks the socket too slow and closes it.

    The same frame string is shared by every outbox it is put in; only one writer task sends on the socket.
    """

    def __init__(self, send_text: SendText, close_socket: CloseSocket, *, limit: int) -> None:
        self._send_text = send_text
        self._close_socket = close_socket
        self.limit = limit
        self._queue: deque[str] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._close: tuple[int, str, str | None, bool] | None = None
        self.on_overflow: Callable[[Outbox], None] | None = None
        self.channels: dict[str, float | None] = {}
        self.last_put = time.monotonic()
        self.done = asyncio.Event()

    @property
    def closing(self) -> bool:
        """A close was asked for: no more frames are accepted."""
        return self._close is not None

    def put(self, frame: str) -> bool:
        """Queue a frame; False (and the socket is being closed as too slow) when the queue is full."""
        if self._close is not None:
            return False
        if len(self._queue) >= self.limit:
            self._overflow()
            return False
        self._queue.append(frame)
        self.last_put = time.monotonic()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def close_soon(self, code: int, reason: str, *, final_frame: str | None = None, flush: bool) -> None:
        """Close the socket after the queued frames (flush) or instead of them, sending `final_frame` last."""
        if self._close is not None:
            return
        if not flush:
            self._queue.clear()
        self._close = (code, reason, final_frame, flush)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _overflow(self) -> None:
        dropped = len(self._queue)
        log.warning("ws_consumer_too_slow", queued=dropped, limit=self.limit)
        self.close_soon(
            CLOSE_TOO_SLOW,
            "too slow",
            final_frame=error_frame(
                "too_slow", f"this connection fell {dropped} frames behind and is closed; reconnect"
            ),
            flush=False,
        )
        if self.on_overflow is not None:
            self.on_overflow(self)

    async def run(self) -> None:
        """Write queued frames in order until a close is asked for; then send the final frame and close."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                queue = self._queue
                while queue:
                    await self._send_text(queue.popleft())
                if self._close is not None:
                    break
                self._waiter = loop.create_future()
                await self._waiter
                self._waiter = None
            code, reason, final_frame, _ = self._close
            if final_frame is not None:
                await self._send_text(final_frame)
            await self._close_socket(code, reason)
        except OSError:
            pass  # the peer is gone (uvicorn's ClientDisconnected is an OSError): nothing left to tell it
        finally:
            self._queue.clear()
            self.done.set()
