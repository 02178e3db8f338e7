"""Periodic background work (`pitbox.lifecycle.Periodic`): a failed round is logged and the next one runs;
closing cancels the round in progress."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from pitbox.lifecycle import Periodic

HANG_GUARD_S = 60  # only so that a broken loop fails the test instead of hanging the run


async def test_a_failed_round_is_logged_and_the_next_one_runs() -> None:
    failures: list[Exception] = [ConnectionRefusedError("the database is away"), KeyError("a bug")]
    rounds = 0
    third_round = asyncio.Event()

    async def work() -> None:
        nonlocal rounds
        rounds += 1
        if failures:
            raise failures.pop(0)
        third_round.set()

    with capture_logs() as logs:
        async with Periodic("test-rounds", 0.01, work), asyncio.timeout(HANG_GUARD_S):
            await third_round.wait()

    assert rounds == 3
    logged = [(e["event"], e["log_level"], e.get("error")) for e in logs if e.get("task") == "test-rounds"]
    assert logged == [
        ("periodic_round_failed", "warning", "ConnectionRefusedError"),
        ("periodic_round_crashed", "error", None),
    ]


async def test_closing_cancels_the_round_in_progress() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def endless_round() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    periodic = Periodic("test-close", 3600, endless_round, at_start=True)
    await periodic.start()
    async with asyncio.timeout(HANG_GUARD_S):
        await started.wait()
        await periodic.close()
    assert cancelled.is_set()
