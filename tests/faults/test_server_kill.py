"""`pitbox serve` is SIGKILLed in the middle of a steady ingest and started again: every batch that got a 2xx
is stored exactly once, nothing is half-written, and a batch the dead server had committed is answered as a
duplicate when the client sends it again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from tests.conftest import RunningServer, Team
from tests.faults.conftest import (
    REQUEST_TIMEOUT_S,
    ServeProcess,
    SteadyIngest,
    acked_since,
    assert_acked_is_stored,
    create_session,
    eventually,
    marks_of,
    run_until,
    stored_batch_keys,
)

KILLS = 2


async def test_acknowledged_batches_survive_sigkill_of_the_server(
    server: RunningServer, team: Team, tmp_path: Path
) -> None:
    database_url = str(server.settings.database_url)
    serve = ServeProcess(database_url, tmp_path / "serve")
    await serve.start()
    # The batch each ingest had in hand at a kill, when the database shows the dead server had committed it
    # (sent again after the cut connection, it must be answered as a duplicate).
    committed_in_flight: list[tuple[SteadyIngest, str]] = []
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
                serve.kill()  # returns once the process is gone: nothing more is committed by it
                in_flight = [(ingest, f"b-{ingest.next_index}") for ingest in ingests]
                committed = await stored_batch_keys(
                    database_url, [(ingest.session_id, f"id:{key}") for ingest, key in in_flight]
                )
                committed_in_flight.extend(
                    (ingest, key)
                    for ingest, key in in_flight
                    if (ingest.session_id, f"id:{key}") in committed
                )
                await eventually(lambda: all(i.answers["transport"] > 0 for i in ingests), "refused sends")
                await serve.start()
            await eventually(
                acked_since(ingests, marks_of(ingests), 5),
                "ingest acknowledged again after the last restart",
            )

        await run_until(stop, tasks, kill_and_restart())

        # A client that lost its ack sends the batch again: the restarted server knows it, whatever the kill hit.
        async with httpx.AsyncClient(base_url=serve.url, timeout=REQUEST_TIMEOUT_S) as http:
            for ingest in ingests:
                again = await http.post(
                    "/api/telemetry",
                    content=ingest.body(0),
                    headers={"Authorization": f"Bearer {ingest.token}", "content-type": "application/json"},
                )
                assert again.status_code == 200, again.text
                assert again.json()["duplicate"] is True and again.json()["batchKey"] == "id:b-0", again.text
    finally:
        serve.stop()

    retried = [(ingest, key) for ingest, key in committed_in_flight if key in ingest.cut]
    print(f"\nFAULT server SIGKILL: {len(retried)} batch(es) committed by the dying server, then sent again")
    for ingest, key in retried:
        answer = ingest.final.get(key)
        assert answer == (200, True), (
            f"{key} was committed before the kill, yet its retry was answered {answer}"
        )
    await assert_acked_is_stored(
        database_url, ingests, f"server SIGKILL x{KILLS}", {"200", "201", "transport"}
    )
