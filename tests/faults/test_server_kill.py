"""`pitbox serve` is SIGKILLed in the middle of a steady ingest and started again: every batch that got a 2xx
is stored exactly once, nothing is half-written, and the retried batches are answered as duplicates."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import RunningServer, Team
from tests.faults.conftest import (
    ServeProcess,
    SteadyIngest,
    acked_since,
    assert_acked_is_stored,
    create_session,
    eventually,
    marks_of,
    run_until,
)

KILLS = 2


async def test_acknowledged_batches_survive_sigkill_of_the_server(
    server: RunningServer, team: Team, tmp_path: Path
) -> None:
    database_url = str(server.settings.database_url)
    serve = ServeProcess(database_url, tmp_path / "serve")
    await serve.start()
    try:
        ingests = []
        for driver in (team.driver, team.driver2, team.driver, team.driver2):
            assert driver.driver_id is not None
            session_id = await create_session(serve.url, driver.token, driver.driver_id)
            ingests.append(SteadyIngest(serve.url, driver.token, driver.driver_id, session_id, pause_s=0.0))
        stop = asyncio.Event()
        tasks = [asyncio.create_task(ingest.run(stop)) for ingest in ingests]

        async def kill_and_restart() -> None:
            for _ in range(KILLS):
                await eventually(acked_since(ingests, marks_of(ingests), 5), "ingest under way")
                serve.kill()
                await eventually(lambda: all(i.answers["transport"] > 0 for i in ingests), "refused sends")
                await serve.start()
            await eventually(
                acked_since(ingests, marks_of(ingests), 5),
                "ingest acknowledged again after the last restart",
            )

        await run_until(stop, tasks, kill_and_restart())
    finally:
        serve.stop()

    await assert_acked_is_stored(
        database_url, ingests, f"server SIGKILL x{KILLS}", {"200", "201", "transport"}
    )
