"""Stream a recorded session to a running server exactly as a relay agent would: batches, paced by their time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets

from pitbox.client import ApiError, PitboxClient, Subscription
from pitbox.recordings.models import Recording
from pitbox.sessions.models import MAX_TRACK_LENGTH_M, MIN_TRACK_LENGTH_M
from pitbox.telemetry.laps import measured_track_length


@dataclass(frozen=True)
class ReplayResult:
    """What a replay sent, and over what (`websocket`, `http`, or `websocket+http` after a fallback)."""

    session_id: str
    samples: int
    batches: int
    seconds: float
    transport: str = "http"


class _Sender:
    """Sends batches over the WebSocket while it works, then over HTTP (batch ids make a resend harmless)."""

    def __init__(self, client: PitboxClient, socket: Subscription | None) -> None:
        self._client = client
        self._socket = socket
        self.used: list[str] = []

    async def send(self, driver_id: str, session_id: str, batch: list[dict[str, Any]], batch_id: str) -> None:
        if self._socket is not None:
            try:
                await self._socket.send_batch(driver_id, session_id, batch, batch_id=batch_id)
                self._note("websocket")
                return
            except (OSError, websockets.ConnectionClosed):
                self._socket = None  # the socket dropped: this batch and the rest go over HTTP
        await self._client.send_batch(driver_id, session_id, batch, batch_id=batch_id)
        self._note("http")

    def _note(self, transport: str) -> None:
        if transport not in self.used:
            self.used.append(transport)


def session_fields(
    recording: Recording, *, track: str | None = None, track_config: str | None = None, car: str | None = None
) -> dict[str, Any]:
    """The body fields of POST /api/sessions for a session made from `recording`: its sim, its track (name,
    layout and the lap length measured from its data) and its car. `track`, `track_config` and `car` name
    what the file does not (an Assetto Corsa capture names neither); the file's own names win otherwise."""
    fields: dict[str, Any] = {"sim": recording.source}
    name = recording.track or track
    if name:
        fields["trackName"] = name
        fields["trackConfig"] = recording.track_config or track_config or ""
        length = measured_track_length(recording.channels)
        if length is not None and MIN_TRACK_LENGTH_M <= length <= MAX_TRACK_LENGTH_M:
            fields["trackLengthM"] = round(length, 1)  # outside, a measure of too little data: not a length
    if recording.car or car:
        fields["car"] = recording.car or car
    return fields


async def replay_recording(
    client: PitboxClient,
    recording: Recording,
    *,
    driver_id: str,
    session_id: str,
    speed: float | None = 1.0,
    batch_size: int = 60,
    t_offset: float = 0.0,
    on_batch: Callable[[int], None] | None = None,
    transport: str = "websocket",
) -> ReplayResult:
    """Send every sample of `recording` in batches; `speed` None sends as fast as the server accepts.

    Batches go over one WebSocket (acknowledged after commit) with HTTP as the fallback, as a relay agent does;
    `transport="http"` skips the socket. Batch ids are derived from the session and the batch number, so a
    replay that is interrupted and run again for the same session stores nothing twice. `t_offset` shifts time,
    so a recording can be looped in one session (its laps continue under new numbers: lap detection never
    reuses a number in a session).
    """
    async with contextlib.AsyncExitStack() as stack:
        socket = None
        if transport == "websocket":
            try:
                socket = await stack.enter_async_context(client.subscribe())
            except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed, ApiError):
                socket = None  # no socket (a proxy without WebSocket, an old server): HTTP batches
        sender = _Sender(client, socket)
        sent, batches, seconds = await _paced(
            sender, recording, driver_id, session_id, speed, batch_size, t_offset, on_batch
        )
    return ReplayResult(session_id, sent, batches, seconds, "+".join(sender.used) or transport)


async def _paced(
    sender: _Sender,
    recording: Recording,
    driver_id: str,
    session_id: str,
    speed: float | None,
    batch_size: int,
    t_offset: float,
    on_batch: Callable[[int], None] | None,
) -> tuple[int, int, float]:
    started = time.perf_counter()
    sent = batches = 0
    for number, batch in enumerate(recording.iter_samples(batch_size)):
        if not batch:
            continue
        if t_offset:
            for sample in batch:
                sample["t"] = float(sample["t"]) + t_offset
        if speed is not None:
            due = started + (float(batch[-1]["t"]) - t_offset) / speed
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await sender.send(driver_id, session_id, batch, f"replay-{t_offset:.0f}-{number:07d}")
        sent += len(batch)
        batches += 1
        if on_batch is not None:
            on_batch(len(batch))
    return sent, batches, time.perf_counter() - started
