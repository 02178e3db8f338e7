"""`pitbox relay-replay`: plays a capture to a relay as the sim would, paced by its timing or as fast as possible.

`to` sends every datagram to HOST:PORT (sims that push: F1, Codemasters, Forza, Project CARS). `listen`
waits on HOST:PORT for the relay to ask: for Assetto Corsa it plays the sim's side of the handshake
(answers the handshake with the names given, streams after "subscribe update", stops at "dismiss");
for the others the first datagram received names where to send.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pitbox.relay.capture import Datagram
from pitbox.relay.sources.ac import (
    OP_DISMISS,
    OP_HANDSHAKE,
    OP_SUBSCRIBE_UPDATE,
    handshake_response,
    read_handshaker,
)

__all__ = ["AcNames", "play_capture"]


@dataclass(frozen=True)
class AcNames:
    """What the replayed Assetto Corsa says in its handshake answer; empty where the capture does not say (a
    capture holds no handshake): the relay then names no car or track, rather than a made-up one."""

    car: str = ""
    driver: str = "PitBox replay"
    track: str = ""
    config: str = ""


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.inbox: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inbox.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:  # the relay is not listening (yet): UDP drops it
        return


async def play_capture(
    datagrams: Sequence[Datagram],
    *,
    source: str,
    to: tuple[str, int] | None = None,
    listen: tuple[str, int] | None = None,
    speed: float | None = 1.0,
    ac_names: AcNames | None = None,
    on_listening: Callable[[tuple[str, int]], None] | None = None,
    may_send: Callable[[int], bool] | None = None,
) -> int:
    """Send the capture's datagrams; how many were sent. `speed` None sends as fast as possible.

    `may_send(n)` (tests) holds the nth datagram back until it answers True: UDP has no flow control, so
    a sender faster than its receiver loses datagrams in the kernel's buffer.
    """
    loop = asyncio.get_running_loop()
    endpoint = _Endpoint()
    if listen is not None:
        await loop.create_datagram_endpoint(lambda: endpoint, local_addr=listen)
    else:
        await loop.create_datagram_endpoint(lambda: endpoint, remote_addr=to)
    assert endpoint.transport is not None
    transport = endpoint.transport
    try:
        if on_listening is not None:
            on_listening(transport.get_extra_info("sockname")[:2])
        target: tuple[str, int] | None = None
        subscribed = asyncio.Event()
        stopped = asyncio.Event()
        if listen is not None:
            target = await _wait_for_client(endpoint, source, ac_names or AcNames(), subscribed, stopped)
        return await _stream(transport, target, datagrams, speed, stopped, may_send)
    finally:
        transport.close()


async def _wait_for_client(
    endpoint: _Endpoint, source: str, names: AcNames, subscribed: asyncio.Event, stopped: asyncio.Event
) -> tuple[str, int]:
    assert endpoint.transport is not None
    while True:
        data, addr = await endpoint.inbox.get()
        if source != "ac":
            return addr
        operation = read_handshaker(data)
        if operation == OP_HANDSHAKE:
            endpoint.transport.sendto(
                handshake_response(names.car, names.driver, names.track, names.config), addr
            )
        elif operation == OP_SUBSCRIBE_UPDATE:
            asyncio.get_running_loop().create_task(_watch_dismiss(endpoint, stopped))
            return addr


async def _watch_dismiss(endpoint: _Endpoint, stopped: asyncio.Event) -> None:
    while not stopped.is_set():
        data, _addr = await endpoint.inbox.get()
        if read_handshaker(data) == OP_DISMISS:
            stopped.set()


async def _held_until(may_send: Callable[[int], bool], sent: int) -> None:
    """Wait (polling: the receiver exposes a counter, not an event) until the next datagram may go."""
    for _ in iter(lambda: may_send(sent), True):
        await asyncio.sleep(0.001)


async def _stream(
    transport: asyncio.DatagramTransport,
    target: tuple[str, int] | None,
    datagrams: Sequence[Datagram],
    speed: float | None,
    stopped: asyncio.Event,
    may_send: Callable[[int], bool] | None,
) -> int:
    started = time.perf_counter()
    data_time = 0.0
    sent = 0
    for datagram in datagrams:
        if stopped.is_set():
            break
        data_time += datagram.delta_s
        if speed is not None:
            delay = started + data_time / speed - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        if may_send is not None:
            await _held_until(may_send, sent)
        transport.sendto(datagram.payload, target)
        sent += 1
        if speed is None and sent % 16 == 0:
            await asyncio.sleep(0)  # let a receiver in the same process keep up
    return sent
