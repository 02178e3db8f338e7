"""Live coaching: background workers fed by a bounded queue. `on_lap_completed` never waits; laps beyond the
backlog are dropped and counted."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import structlog

from pitbox.coaching.coach import Coach
from pitbox.coaching.speech import FeedbackPush
from pitbox.lifecycle import Lifecycle

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _LiveLap:
    session_id: uuid.UUID
    driver_id: uuid.UUID
    lap_number: int
    started: float


class LiveCoaching(Lifecycle):
    """Coaches each completed lap in the background, from `start()` to `close()`."""

    def __init__(
        self,
        coach: Coach,
        push: FeedbackPush,
        counters: Counter[str],
        *,
        queue_size: int = 64,
        workers: int = 2,
    ) -> None:
        self._coach = coach
        self._push = push
        self.counters = counters
        self._queue: asyncio.Queue[_LiveLap] = asyncio.Queue(maxsize=queue_size)
        self._worker_count = workers
        self._workers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start the live-coaching workers (once)."""
        if not self._workers:
            self._workers = [asyncio.create_task(self._work()) for _ in range(self._worker_count)]

    async def close(self) -> None:
        """Stop the workers; queued laps are dropped."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    async def idle(self) -> None:
        """Wait until every queued lap has been coached (and its speech made): for tests and benchmarks."""
        await self._queue.join()
        await self._push.idle()

    def on_lap_completed(self, session_id: uuid.UUID, driver_id: uuid.UUID, lap_number: int) -> bool:
        """Queue a completed lap for the workers; never waits. False when the backlog is full (the lap is dropped)."""
        try:
            self._queue.put_nowait(_LiveLap(session_id, driver_id, lap_number, time.perf_counter()))
        except asyncio.QueueFull:
            self.counters["dropped"] += 1
            log.warning("coaching_backlog_full", session_id=str(session_id), lap=lap_number)
            return False
        self.counters["queued"] += 1
        return True

    @property
    def backlog(self) -> int:
        """Laps waiting for coaching."""
        return self._queue.qsize()

    async def _work(self) -> None:
        while True:
            live = await self._queue.get()
            try:
                await self._coach.coach_stored_lap(live.session_id, live.lap_number, started=live.started)
            except Exception as exc:
                self.counters["failed"] += 1
                log.error(
                    "coaching_failed", session_id=str(live.session_id), lap=live.lap_number, error=repr(exc)
                )
            finally:
                self._queue.task_done()
