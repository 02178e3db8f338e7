"""PostgreSQL crashes (`pg_ctl stop -m immediate`) under a steady ingest and comes back: the running server
answers 503 meanwhile (never 500, never hangs), recovers by itself, and every acknowledged sample is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.conftest import World, create_database, make_settings, run_server
from tests.faults.conftest import (
    REQUEST_TIMEOUT_S,
    ControlledPostgres,
    ServeProcess,
    SteadyIngest,
    acked_since,
    assert_acked_is_stored,
    create_session,
    eventually,
    marks_of,
    run_until,
)


async def test_acknowledged_batches_survive_a_database_crash_and_the_server_recovers_without_restart(
    controlled_postgres: ControlledPostgres, tmp_path: Path
) -> None:
    database_url = await create_database(controlled_postgres.uri)
    async with run_server(make_settings(database_url, tmp_path / "setup")) as setup:  # migrates, makes people
        team = await World(setup.services).team()
    serve = ServeProcess(database_url, tmp_path / "serve")
    await serve.start()
    try:
        ingests = []
        for driver in (team.driver, team.driver2):
            assert driver.driver_id is not None
            session_id = await create_session(serve.url, driver.token, driver.driver_id)
            ingests.append(SteadyIngest(serve.url, driver.token, driver.driver_id, session_id))
        stop = asyncio.Event()
        tasks = [asyncio.create_task(ingest.run(stop)) for ingest in ingests]
        pid = serve.pid

        async def crash_and_recover() -> None:
            await eventually(acked_since(ingests, [-1] * len(ingests), 5), "ingest under way")
            await asyncio.to_thread(controlled_postgres.stop, "immediate")
            await eventually(lambda: sum(i.answers["503"] for i in ingests) >= 5, "503 answers in the outage")
            async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as http:
                health = await http.get(f"{serve.url}/health")
            assert (health.status_code, health.json()["components"]["database"]["status"]) == (503, "down")
            await asyncio.to_thread(controlled_postgres.start)
            await eventually(
                acked_since(ingests, marks_of(ingests), 5),
                "ingest acknowledged again after the database came back",
            )

        await run_until(stop, tasks, crash_and_recover())
        assert serve.running() and serve.pid == pid, "the server was restarted or died"
    finally:
        serve.stop()

    await assert_acked_is_stored(database_url, ingests, "database crash", {"200", "201", "503"})
