"""POST bodies are decoded, checked and encoded in worker processes (telemetry/prepare.py): the answers and the
stored samples are those of the in-process path, errors keep their shape, and a worker that dies loses nothing."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx

from pitbox.telemetry.prepare import CRASH_LIMIT
from tests.conftest import RunningServer, Team, assert_error, make_settings, run_server
from tests.telemetry.conftest import as_rows, new_session, post_batches, synthetic_laps
from tests.telemetry.test_ingest import stored

COMPARED = ("samples", "tStart", "tEnd", "lapsCompleted", "duplicate", "chunkNo")


async def read_back(client: httpx.AsyncClient, team: Team, session_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/sessions/{session_id}/telemetry", headers=team.driver.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body["columns"]


async def test_worker_processes_and_the_server_process_store_the_same(
    client: httpx.AsyncClient, server: RunningServer, team: Team, database_url: str, tmp_path: Path
) -> None:
    assert server.services.telemetry.workers.processes >= 1  # the shared server prepares in workers
    assert team.driver.driver_id is not None
    rows = as_rows(synthetic_laps(laps=2))
    in_workers = await new_session(client, team.driver)
    worker_acks = await post_batches(client, team.driver.headers, team.driver.driver_id, in_workers, rows)

    settings = make_settings(database_url, tmp_path / "data", ingest_processes=0)
    async with (
        run_server(settings) as inline,
        httpx.AsyncClient(base_url=inline.url, timeout=30) as inline_client,
    ):
        assert inline.services.telemetry.workers.pids() == []
        in_process = await new_session(inline_client, team.driver)
        inline_acks = await post_batches(
            inline_client, team.driver.headers, team.driver.driver_id, in_process, rows
        )

    assert [{k: a[k] for k in COMPARED} for a in worker_acks] == [
        {k: a[k] for k in COMPARED} for a in inline_acks
    ]
    assert await read_back(client, team, in_workers) == await read_back(client, team, in_process)


async def test_errors_from_a_worker_keep_the_one_error_shape(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver)
    samples = [{"t": 0.0, "speed": 100.0}, {"t": 0.1, "speed": "fast"}]
    body = {"driverId": team.driver.driver_id, "sessionId": session_id, "samples": samples}
    response = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
    error = assert_error(response, 422)
    assert "samples[1].speed" in error["message"]
    response = await client.post(
        "/api/telemetry",
        content=b'{"driverId": "x", "samples": [',
        headers={**team.driver.headers, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_json")


async def test_a_killed_ingest_worker_loses_no_batch(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    workers = server.services.telemetry.workers
    assert team.driver.driver_id is not None
    session_id = await new_session(client, team.driver)
    rows = as_rows(synthetic_laps(laps=1))
    await post_batches(client, team.driver.headers, team.driver.driver_id, session_id, rows[:600])
    before = workers.pids()
    assert before
    os.kill(before[0], signal.SIGKILL)

    # The batch in flight when the pool breaks is prepared in the server process; the next ones in a new pool.
    for seq, start in enumerate(range(600, len(rows), 600), start=1):
        body = {
            "driverId": team.driver.driver_id,
            "sessionId": session_id,
            "seq": seq,
            "samples": rows[start : start + 600],
        }
        response = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
        assert response.status_code == 201, response.text

    assert (await stored(server, session_id))[1] == len(rows)
    after = workers.pids()
    assert after and before[0] not in after


async def test_workers_that_keep_dying_leave_ingest_to_the_server_process(
    team: Team, database_url: str, tmp_path: Path
) -> None:
    assert team.driver.driver_id is not None
    rows = as_rows(synthetic_laps(laps=1))
    settings = make_settings(database_url, tmp_path / "data", ingest_processes=1)
    async with run_server(settings) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        workers = server.services.telemetry.workers
        session_id = await new_session(client, team.driver)
        posted = 0

        async def post_next() -> None:
            nonlocal posted
            body = {
                "driverId": team.driver.driver_id,
                "sessionId": session_id,
                "seq": posted // 100,
                "samples": rows[posted : posted + 100],
            }
            response = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
            assert response.status_code == 201, response.text
            posted += 100

        for _ in range(CRASH_LIMIT):
            await post_next()  # through a (new) worker
            os.kill(workers.pids()[0], signal.SIGKILL)
            await post_next()  # its worker is gone: prepared in the server process
        await post_next()
        await post_next()

        assert workers.pids() == []  # given up on for a while: no process started per batch
        assert (await stored(server, session_id))[1] == posted
