"""The outgoing side of one socket: a bounded queue of encoded frames and the one task that writes them.

When the socket's transport can be written directly (realtime/transport.py) and nothing is queued or being
written, `put` writes the frame at once: no task wake-up per socket per message. Otherwise frames queue in
order and the writer task sends them, several per wake-up, through the transport when it is ready again or
through the ASGI send (which waits for the transport to drain).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from pitbox.realtime.frames import CLOSE_TOO_SLOW, ServerFrame, error_frame
from pitbox.realtime.transport import FrameTransport

log = structlog.get_logger(__name__)

WRITE_BATCH_FRAMES = 64

SendText = Callable[[str], Awaitable[None]]
CloseSocket = Callable[[int, str], Awaitable[None]]


class Outbox:
    """Frames waiting for one socket. `put` never blocks: a full queue marks the socket too slow and closes it.

    The same frame is shared by every outbox it is put in; frames leave in the order they were put, written
    either by `put` itself (nothing queued, transport ready) or by the one writer task.
    """

    def __init__(
        self,
        send_text: SendText,
        close_socket: CloseSocket,
        *,
        limit: int,
        transport: FrameTransport | None = None,
    ) -> None:
        self._send_text = send_text
        self._close_socket = close_socket
        self._transport = transport
        self.limit = limit
        self._queue: deque[ServerFrame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._close: tuple[int, str, str | None, bool] | None = None
        self.on_overflow: Callable[[Outbox], None] | None = None
        self.channels: dict[str, float | None] = {}
        self.last_put = time.monotonic()
        self.done = asyncio.Event()

    @property
    def direct(self) -> bool:
        """Frames may be written straight to this socket's transport (realtime/transport.py)."""
        return self._transport is not None

    @property
    def queued(self) -> int:
        """Frames waiting for the writer task (the transport was busy or paused when they came)."""
        return len(self._queue)

    @property
    def closing(self) -> bool:
        """A close was asked for: no more frames are accepted."""
        return self._close is not None

    def put(self, frame: ServerFrame) -> bool:
        """Send or queue a frame; False (and the socket is being closed as too slow) when the queue is full."""
        if self._close is not None:
            return False
        queue = self._queue
        waiter = self._waiter
        # The writer is idle (waiting, nothing queued or in flight): write now if the transport takes it now.
        if not queue and waiter is not None and self._transport is not None and self._transport.ready():
            self._transport.write(frame.wire)
            self.last_put = time.monotonic()
            return True
        if len(queue) >= self.limit:
            self._overflow()
            return False
        queue.append(frame)
        self.last_put = time.monotonic()
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def put_text(self, text: str) -> bool:
        """`put` for a frame built for this socket alone (answers, errors)."""
        return self.put(ServerFrame.from_text(text))

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
            queue = self._queue
            transport = self._transport
            while True:
                while queue:
                    # A full transport is waited for here (not through the ASGI send, one frame at a time).
                    if transport is not None and (transport.ready() or await transport.wait_ready()):
                        # Several queued frames per write (bounded, so a paused transport is noticed between).
                        if len(queue) == 1:
                            transport.write(queue.popleft().wire)
                        else:
                            batch = min(len(queue), WRITE_BATCH_FRAMES)
                            transport.write(b"".join([queue.popleft().wire for _ in range(batch)]))
                    else:
                        await self._send_text(queue.popleft().text)
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
