"""The outbox's order when frames go both straight to the transport and through its writer task.

The transport here is a recording stand-in for the server's (whose readiness the test switches), so the
moments in between a paused transport becoming writable again and the writer task running can be reached on
purpose; tests/realtime/test_fanout.py covers the same over real sockets.
"""

from __future__ import annotations

import asyncio

from pitbox.realtime.frames import ServerFrame, websocket_text_frame
from pitbox.realtime.outbox import Outbox


class RecordingTransport:
    """Keeps what is written; the test switches readiness as a transport's high-water mark or a close would."""

    def __init__(self) -> None:
        self.is_ready = True
        self.is_open = True
        self.drained = asyncio.Event()
        self.written = bytearray()

    def ready(self) -> bool:
        return self.is_ready and self.is_open

    def write(self, data: bytes) -> None:
        assert self.ready()
        self.written += data

    async def wait_ready(self) -> bool:
        await self.drained.wait()
        return self.ready()

    def pause(self) -> None:
        self.is_ready = False
        self.drained.clear()

    def resume(self) -> None:
        self.is_ready = True
        self.drained.set()


def frame(n: int) -> ServerFrame:
    return ServerFrame.from_text(f'{{"type":"message","n":{n}}}')


def numbers(wire: bytes) -> list[int]:
    """The `n` of each text frame in `wire` (short unmasked frames only)."""
    found, pos = [], 0
    while pos < len(wire):
        length = wire[pos + 1]
        payload = wire[pos + 2 : pos + 2 + length]
        found.append(int(payload.split(b'"n":')[1].rstrip(b"}")))
        pos += 2 + length
    return found


def recording_outbox(transport: RecordingTransport) -> tuple[Outbox, list[str]]:
    """An outbox on `transport` whose ASGI sends are recorded (the list) and whose close does nothing."""
    sent_through_asgi: list[str] = []

    async def send_text(text: str) -> None:
        sent_through_asgi.append(text)

    async def close_socket(code: int, reason: str) -> None:
        pass

    return Outbox(send_text, close_socket, limit=100, transport=transport), sent_through_asgi


async def test_frames_leave_in_order_across_direct_writes_and_the_queue() -> None:
    transport = RecordingTransport()
    outbox, sent_through_asgi = recording_outbox(transport)
    writer = asyncio.create_task(outbox.run())
    await asyncio.sleep(0)  # the writer is idle now
    assert outbox.put(frame(0)) and outbox.queued == 0  # written at once, no task wake-up
    transport.is_ready = False  # the peer stopped reading: the transport is over its high-water mark
    outbox.put(frame(1))
    outbox.put(frame(2))
    transport.is_ready = True  # drained, but the writer task has not run yet
    outbox.put(frame(3))  # must not overtake 1 and 2
    assert outbox.queued == 3
    await asyncio.sleep(0)
    assert outbox.queued == 0 and not sent_through_asgi  # one wake-up wrote the three together
    assert outbox.put(frame(4)) and outbox.queued == 0
    assert numbers(bytes(transport.written)) == [0, 1, 2, 3, 4]
    outbox.close_soon(1000, "bye", flush=True)
    await writer


async def test_a_full_transport_is_waited_for_and_a_closed_one_left_to_the_asgi_send() -> None:
    transport = RecordingTransport()
    outbox, sent_through_asgi = recording_outbox(transport)
    writer = asyncio.create_task(outbox.run())
    await asyncio.sleep(0)
    transport.pause()
    outbox.put(frame(0))
    outbox.put(frame(1))
    await asyncio.sleep(0)
    assert outbox.queued == 2 and not transport.written and not sent_through_asgi  # waiting for the drain
    transport.resume()
    await asyncio.sleep(0)
    assert numbers(bytes(transport.written)) == [0, 1] and outbox.queued == 0
    transport.pause()
    outbox.put(frame(2))
    await asyncio.sleep(0)
    transport.is_open = False  # the connection is lost while full: uvicorn sets `writable` then too
    transport.resume()
    outbox.close_soon(1000, "bye", flush=True)
    await writer
    assert sent_through_asgi == [frame(2).text]  # the ASGI send is the one to report the disconnect


def test_wire_frame_lengths_use_the_rfc_6455_encodings() -> None:
    for size, head in (
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (70_000, b"\x81\x7f" + (70_000).to_bytes(8)),
    ):
        payload = b"x" * size
        assert websocket_text_frame(payload) == head + payload
