"""Stream a recorded session to a running server exactly as a relay agent would: batches, paced by their time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from pitbox.client import PitboxClient
from pitbox.recordings.models import Recording


@dataclass(frozen=True)
class ReplayResult:
    """What a replay sent."""

    session_id: str
    samples: int
    batches: int
    seconds: float


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
) -> ReplayResult:
    """Send every sample of `recording` in batches; `speed` None sends as fast as the server accepts.

    Batch ids are derived from the session and the batch number, so a replay that is interrupted and run again
    for the same session stores nothing twice. `t_offset` shifts time (to loop a recording in one session).
    """
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
        await client.send_batch(driver_id, session_id, batch, batch_id=f"replay-{t_offset:.0f}-{number:07d}")
        sent += len(batch)
        batches += 1
        if on_batch is not None:
            on_batch(len(batch))
    return ReplayResult(session_id, sent, batches, time.perf_counter() - started)
