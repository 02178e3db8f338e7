"""How a part of the app joins its lifespan (`Lifecycle`), and the one loop for periodic work (`Periodic`).

A service that owns background work or an outside resource is a `Lifecycle`: `start()` begins the work, `close()`
ends it and lets go of what the service holds. The app's lifespan (`pitbox.app.build_services`) enters every one
as an async context manager on one `AsyncExitStack`, in one written order, so they stop in the reverse order,
also when a later one fails to start; nothing starts on first use. This is how litestar's channels plugin joins
an app (its backend's `on_startup` / `on_shutdown`).

`Periodic` runs work every N seconds (ending idle sessions, compacting chunks, pruning video, the hub's
keep-alives): a failed round is logged and the next one runs on time, and `close()` stops it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Self

import asyncpg
import structlog

__all__ = ["OUTAGES", "Lifecycle", "Periodic"]

log = structlog.get_logger(__name__)

OUTAGES: tuple[type[Exception], ...] = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""Failures that a later round may not meet: the database, a broker or the disk away or refusing for a while."""


class Lifecycle:
    """A part of the app with work or resources of its own: started and closed by the app's lifespan."""

    async def start(self) -> None:
        """Begin the background work (none by default)."""

    async def close(self) -> None:
        """End the background work and release what is held (nothing by default)."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class Periodic(Lifecycle):
    """Runs `work()` every `every_s` seconds in a task named `name`, from `start()` until `close()`.

    The first round runs `every_s` after `start()` (at once with `at_start=True`); the next one `every_s`
    after a round ends, so rounds never overlap. A round that fails for an outage (`OUTAGES`) is logged as a
    warning; any other failure is logged with its traceback (a bug must not end the work for the rest of the
    process's life); either way the next round runs. `close()` cancels a round in progress and waits for the
    task to end. With `every_s <= 0` nothing runs.
    """

    def __init__(
        self, name: str, every_s: float, work: Callable[[], Awaitable[object]], *, at_start: bool = False
    ) -> None:
        self.name = name
        self.every_s = every_s
        self._work = work
        self._at_start = at_start
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the rounds (once; not at all when `every_s <= 0`)."""
        if self.every_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._rounds(), name=self.name)

    async def close(self) -> None:
        """Cancel the rounds, the one in progress included, and wait until they stopped."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # wait() neither raises the task's CancelledError nor swallows one aimed at the caller.
            await asyncio.wait([task])

    async def _rounds(self) -> None:
        if not self._at_start:
            await asyncio.sleep(self.every_s)
        while True:
            try:
                await self._work()
            except OUTAGES as error:
                log.warning(
                    "periodic_round_failed",
                    task=self.name,
                    error=type(error).__name__,
                    message=str(error)[:200],
                )
            except Exception:  # logged with its traceback; the next round runs
                log.exception("periodic_round_crashed", task=self.name)
            await asyncio.sleep(self.every_s)
