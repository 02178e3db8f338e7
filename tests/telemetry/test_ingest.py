"""POST /api/telemetry: the three shapes, idempotent retries, authorization, and input checks."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest

from pitbox.telemetry import store
from pitbox.telemetry.prepare import PreparedBatch, prepare_body
from pitbox.telemetry.uniform_rows import UniformRows
from tests.conftest import RunningServer, Team, World, assert_error
from tests.telemetry.conftest import new_session


async def stored(server: RunningServer, session_id: str) -> tuple[int, int]:
    """(chunks, samples) stored for a session."""
    row = await server.services.database.pool.fetchrow(
        "SELECT count(*) AS chunks, coalesce(sum(sample_count), 0) AS samples FROM telemetry_data "
        "WHERE session_id = $1",
        uuid.UUID(session_id),
    )
    return int(row["chunks"]), int(row["samples"])


def batch(driver_id: str | None, session_id: str, n: int = 3, **extra: Any) -> dict[str, Any]:
    samples = [{"t": 0.1 * i, "speed": 100.0 + i, "gear": 3} for i in range(n)]
    return {"driverId": driver_id, "sessionId": session_id, "samples": samples, **extra}


async def test_spec_single_sample_is_stored(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    body = {"driverId": team.driver.driver_id, "sessionId": session_id, "data": {"t": 1.5, "speed": 212.4}}
    response = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
    assert response.status_code == 201, response.text
    assert response.json()["samples"] == 1
    assert await stored(server, session_id) == (1, 1)


async def test_column_batch_is_stored(client: httpx.AsyncClient, server: RunningServer, team: Team) -> None:
    session_id = await new_session(client, team.driver)
    body = {
        "driverId": team.driver.driver_id,
        "sessionId": session_id,
        "batchId": "c-1",
        "columns": {"t": [0.0, 0.1, 0.2], "speed": [100, 101, None]},
    }
    response = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
    assert response.status_code == 201, response.text
    read = await client.get(f"/api/sessions/{session_id}/telemetry", headers=team.driver.headers)
    assert read.json()["columns"]["speed"] == [100, 101, None]


async def test_retried_batch_is_stored_once(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    body = batch(team.driver.driver_id, session_id, n=50, batchId="relay-42")
    first = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
    retry = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
    assert first.status_code == 201 and retry.status_code == 200, retry.text
    assert retry.json()["duplicate"] is True
    assert {k: v for k, v in retry.json().items() if k != "duplicate"} == {
        k: v for k, v in first.json().items() if k != "duplicate"
    }
    assert await stored(server, session_id) == (1, 50)
    summary = await client.get(f"/api/sessions/{session_id}/summary", headers=team.driver.headers)
    assert summary.json()["sampleCount"] == 50


async def test_retry_without_a_batch_id_is_recognised_by_its_content(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    body = batch(team.driver.driver_id, session_id)
    statuses = [(await client.post("/api/telemetry", json=body, headers=team.driver.headers)).status_code]
    statuses.append((await client.post("/api/telemetry", json=body, headers=team.driver.headers)).status_code)
    assert statuses == [201, 200]
    assert await stored(server, session_id) == (1, 3)


async def test_sample_for_another_drivers_session_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_of_driver2 = await new_session(client, team.driver2)
    body = batch(team.driver.driver_id, session_of_driver2)
    response = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
    assert_error(response, 404, "not_found")
    assert await stored(server, session_of_driver2) == (0, 0)


async def test_other_teams_user_cannot_write(
    client: httpx.AsyncClient, server: RunningServer, team: Team, other_team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    response = await client.post(
        "/api/telemetry", json=batch(team.driver.driver_id, session_id), headers=other_team.manager.headers
    )
    assert_error(response, 404)
    assert await stored(server, session_id) == (0, 0)


async def test_api_key_writes_for_its_driver_only(
    client: httpx.AsyncClient, server: RunningServer, world: World, team: Team
) -> None:
    assert team.driver.driver_id and team.driver2.driver_id
    own = await world.api_key(driver_id=team.driver.driver_id, scopes=["telemetry:write"])
    other = await world.api_key(driver_id=team.driver2.driver_id, scopes=["telemetry:write"])
    read_only = await world.api_key(driver_id=team.driver.driver_id, scopes=["telemetry:read"])
    session_id = await new_session(client, team.driver)
    body = batch(team.driver.driver_id, session_id)
    assert_error(await client.post("/api/telemetry", json=body, headers={"X-API-Key": other}), 404)
    assert_error(
        await client.post("/api/telemetry", json=body, headers={"X-API-Key": read_only}), 403, "missing_scope"
    )
    assert await stored(server, session_id) == (0, 0)
    accepted = await client.post("/api/telemetry", json=body, headers={"Authorization": f"Bearer {own}"})
    assert accepted.status_code == 201, accepted.text


async def test_ended_session_takes_no_more_telemetry(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    ended = await client.post(f"/api/sessions/{session_id}/end", headers=team.driver.headers)
    assert ended.json()["status"] == "ended"
    response = await client.post(
        "/api/telemetry", json=batch(team.driver.driver_id, session_id), headers=team.driver.headers
    )
    assert_error(response, 409, "session_ended")
    assert await stored(server, session_id) == (0, 0)


BAD_SAMPLES = [
    ({"t": 0.2, "speed": "fast"}, "samples[1].speed"),
    ({"t": 0.2, "speed": [1, 2]}, "samples[1].speed"),
    ({"t": 0.2, "timestamp": "yesterday"}, "samples[1].timestamp"),
    ({"t": -5.0}, "samples[1].t"),
    ({"t": 1e12}, "samples[1].t"),
    ({"t": 0.2, "lap": 2.5}, "samples[1].lap"),
    ({"t": 0.2, "spe,ed": 1.0}, "samples[1].spe,ed"),
    ("not a sample", "samples[1]"),
]


@pytest.mark.parametrize(("second_sample", "field"), BAD_SAMPLES)
async def test_bad_sample_is_refused_naming_the_field(
    client: httpx.AsyncClient, server: RunningServer, team: Team, second_sample: Any, field: str
) -> None:
    session_id = await new_session(client, team.driver)
    body = {
        "driverId": team.driver.driver_id,
        "sessionId": session_id,
        "samples": [{"t": 0.1, "speed": 1.0}, second_sample],
    }
    error = assert_error(await client.post("/api/telemetry", json=body, headers=team.driver.headers), 422)
    assert error["details"][0]["field"] == field, error
    assert await stored(server, session_id) == (0, 0)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_number_is_refused_naming_the_field(
    client: httpx.AsyncClient, team: Team, literal: str
) -> None:
    session_id = await new_session(client, team.driver)
    raw = (
        f'{{"driverId":"{team.driver.driver_id}","sessionId":"{session_id}",'
        f'"samples":[{{"t":0.0,"speed":1.0}},{{"t":0.1,"speed":{literal}}}]}}'
    )
    response = await client.post(
        "/api/telemetry", content=raw, headers={**team.driver.headers, "Content-Type": "application/json"}
    )
    error = assert_error(response, 422)
    assert error["details"][0]["field"] == "samples[1].speed"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"driverId": None}, "driverId"),
        ({"sessionId": "not-a-uuid"}, "sessionId"),
        ({"samples": []}, "samples"),
        ({"samples": [{"t": i / 60} for i in range(10_001)]}, "samples"),
        ({"samples": [{"t": 0.0, **{f"c{i}": 1.0 for i in range(600)}}]}, "samples[0]"),
        ({"batchId": 17}, "batchId"),
        ({"seq": -1}, "seq"),
        ({"source": "gran-turismo"}, "source"),
        ({"samples": [{"t": 1.0}, {"t": 0.5}]}, "samples[1].t"),
    ],
)
async def test_bad_batch_is_refused_naming_the_field(
    client: httpx.AsyncClient, team: Team, change: dict[str, Any], field: str
) -> None:
    session_id = await new_session(client, team.driver)
    body = {**batch(team.driver.driver_id, session_id), **change}
    error = assert_error(await client.post("/api/telemetry", json=body, headers=team.driver.headers), 422)
    assert error["details"][0]["field"] == field, error


async def test_body_that_is_not_json_is_a_bad_request(client: httpx.AsyncClient, team: Team) -> None:
    response = await client.post(
        "/api/telemetry",
        content=b"{nope",
        headers={**team.driver.headers, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_json")


async def test_known_source_channels_are_renamed_and_converted(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver, sim="iracing")
    body = {
        "driverId": team.driver.driver_id,
        "sessionId": session_id,
        "source": "iracing",
        "samples": [{"SessionTime": 10.0, "Speed": 50.0, "MyCustomThing": 7}],
    }
    assert (await client.post("/api/telemetry", json=body, headers=team.driver.headers)).status_code == 201
    read = (await client.get(f"/api/sessions/{session_id}/telemetry", headers=team.driver.headers)).json()
    assert read["columns"]["speed"] == [180]  # 50 m/s in km/h
    assert read["columns"]["MyCustomThing"] == [7]  # unknown channels are kept


async def waiting_for_a_lock(pool: Any, statement_part: str) -> None:
    """Return once a backend waits for a lock in a statement holding `statement_part` (PostgreSQL has no
    notification of that to await)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position($1 in query) > 0"
    )
    async with asyncio.timeout(30):
        while True:
            if await pool.fetchval(query, statement_part):
                return
            await asyncio.sleep(0.01)


async def store_as_another_server(conn: Any, prepared: PreparedBatch, chunk_no: int) -> None:
    """Store a prepared 3-sample batch (of `batch()`) the way another server's ingest would, under `chunk_no`."""
    await store.insert_chunk(
        conn,
        prepared.batch.session_id,
        chunk_no,
        prepared.batch.driver_id,
        prepared.batch.batch_key,
        (prepared.batch.t_start, prepared.batch.t_end),
        (None, None),
        prepared.names,
        prepared.payload,
        store.BatchStats(3, ["t", "speed", "gear"], 0.0, []),
    )


@pytest.mark.parametrize("same_batch", [True, False], ids=["the same batch", "another batch"])
async def test_batch_stored_by_another_server_while_waiting_is_counted(
    client: httpx.AsyncClient, server: RunningServer, team: Team, same_batch: bool
) -> None:
    """Another server (here: its store calls on a connection of ours) holds the session's lock and stores a
    batch while this server's ingest waits: a retry of that batch gets its first ack, another batch the next
    chunk number."""
    session_id = await new_session(client, team.driver)
    body = batch(team.driver.driver_id, session_id, seq=1)
    theirs = body if same_batch else {**body, "seq": 0}
    telemetry = server.services.telemetry
    stored_by_them = prepare_body(orjson.dumps(theirs), telemetry.codec, UniformRows())
    pool = server.services.database.pool
    async with pool.acquire() as other:
        async with other.transaction():
            row = await store.lock_session_for_ingest(
                other, stored_by_them.batch.session_id, stored_by_them.batch.driver_id, "-"
            )
            posting = asyncio.create_task(
                client.post("/api/telemetry", json=body, headers=team.driver.headers)
            )
            await waiting_for_a_lock(pool, "FOR UPDATE OF s")
            await store_as_another_server(other, stored_by_them, row["next_chunk_no"])
        response = await posting
    assert response.status_code == (200 if same_batch else 201), response.text
    assert response.json()["chunkNo"] == (0 if same_batch else 1)
    assert response.json()["duplicate"] is same_batch
    assert await stored(server, session_id) == ((1, 3) if same_batch else (2, 6))


async def test_chunk_stored_by_a_server_from_before_the_next_chunk_column_is_counted(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    """During a rolling deploy a server from before migration 0005 numbers chunks without the session row."""
    session_id = await new_session(client, team.driver)
    first = batch(team.driver.driver_id, session_id, seq=0)
    old_server = prepare_body(orjson.dumps(first), server.services.telemetry.codec, UniformRows())
    pool = server.services.database.pool
    await store_as_another_server(pool, old_server, 0)
    await pool.execute("UPDATE sessions SET next_chunk_no = 0 WHERE id = $1", uuid.UUID(session_id))
    second = {**first, "seq": 1}
    response = await client.post("/api/telemetry", json=second, headers=team.driver.headers)
    assert response.status_code == 201, response.text
    assert response.json()["chunkNo"] == 1
    assert await stored(server, session_id) == (2, 6)
