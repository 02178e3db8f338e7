"""Compaction: a relay's one-second batches are merged into larger chunks, and nothing a client sees changes.

These tests run a server of their own (own database) whose compaction never runs by itself and takes chunks
of any age (COMPACTION_SETTLE_S=0), so each test says exactly when a merge happens.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest

from pitbox.db import migrate
from pitbox.telemetry.compaction import ChunkCompactor
from tests.conftest import (
    RunningServer,
    Team,
    World,
    create_database,
    drop_database,
    make_settings,
    run_server,
)
from tests.telemetry.conftest import as_rows, new_session, post_batches, synthetic_laps

RELAY_BATCH = 60  # one second at 60 Hz


@dataclass
class Compacting:
    """The server, a client on it, a team, and the server's compactor."""

    server: RunningServer
    client: httpx.AsyncClient
    team: Team
    database_url: str

    @property
    def compactor(self) -> ChunkCompactor:
        """The compactor of the running app."""
        return self.server.services.compaction

    @property
    def driver_id(self) -> str:
        """The team driver's id."""
        assert self.team.driver.driver_id is not None
        return self.team.driver.driver_id


@pytest.fixture(scope="module")
async def compacting(
    pg_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Compacting]:
    """A server on a database of its own, compacting only when asked, chunks of any age."""
    url = await create_database(pg_server_url)
    settings = make_settings(
        url,
        tmp_path_factory.mktemp("compaction"),
        compaction_settle_s=0,
        compaction_interval_s=0,
        live_coaching=False,
    )
    try:
        async with (
            run_server(settings) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        ):
            yield Compacting(server, client, await World(server.services).team(), url)
    finally:
        await drop_database(pg_server_url, url)


def relay_rows(laps: int = 3) -> list[dict[str, Any]]:
    """What a relay sends: steady laps at 60 Hz, a fuel level that changes every two seconds (so it is constant
    within most one-second batches), and no brake channel at all in every seventh second."""
    columns = synthetic_laps(laps=laps)
    t = np.array(columns["t"])
    columns["fuel"] = (40.0 - np.floor(t / 2.0) * 0.0123457).round(7).tolist()
    rows = as_rows(columns)
    for index, row in enumerate(rows):
        if index // RELAY_BATCH % 7 == 3:
            del row["brake"]
    return rows


async def stored_chunks(server: RunningServer, session_id: str) -> list[tuple[Any, ...]]:
    """(chunk_no, sample_count, part_sizes, md5 of payload) of each stored chunk of a session, in order."""
    rows = await server.services.database.pool.fetch(
        """SELECT chunk_no, sample_count, part_sizes, md5(payload) AS digest FROM telemetry_data
           WHERE session_id = $1 ORDER BY chunk_no""",
        uuid.UUID(session_id),
    )
    return [(r["chunk_no"], r["sample_count"], r["part_sizes"], r["digest"]) for r in rows]


async def read_all(compacting: Compacting, session_id: str, **params: Any) -> dict[str, Any]:
    """Every sample of a session, every channel, as JSON."""
    response = await compacting.client.get(
        f"/api/sessions/{session_id}/telemetry",
        params={"limit": 100_000, **params},
        headers=compacting.team.engineer.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def laps_of(compacting: Compacting, session_id: str) -> list[dict[str, Any]]:
    """The session's laps as the API lists them."""
    response = await compacting.client.get(
        f"/api/sessions/{session_id}/laps", headers=compacting.team.engineer.headers
    )
    assert response.status_code == 200, response.text
    laps: list[dict[str, Any]] = response.json()
    return laps


async def end_session(compacting: Compacting, session_id: str) -> None:
    """End the session over HTTP."""
    response = await compacting.client.post(
        f"/api/sessions/{session_id}/end", headers=compacting.team.driver.headers
    )
    assert response.status_code == 200, response.text


def relay_bodies(driver_id: str, session_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The POST bodies of a relay: one second of samples each, numbered with `seq`."""
    return [
        {
            "driverId": driver_id,
            "sessionId": session_id,
            "seq": seq,
            "samples": rows[start : start + RELAY_BATCH],
        }
        for seq, start in enumerate(range(0, len(rows), RELAY_BATCH))
    ]


async def test_small_batches_are_merged_and_read_back_as_sent(compacting: Compacting) -> None:
    session_id = await new_session(compacting.client, compacting.team.driver)
    rows = relay_rows()
    await post_batches(
        compacting.client, compacting.team.driver.headers, compacting.driver_id, session_id, rows, RELAY_BATCH
    )
    read_before, laps_before = await read_all(compacting, session_id), await laps_of(compacting, session_id)
    batches = -(-len(rows) // RELAY_BATCH)
    assert len(await stored_chunks(compacting.server, session_id)) == batches

    await end_session(compacting, session_id)
    merges = await compacting.compactor.compact_session(uuid.UUID(session_id))

    chunks = await stored_chunks(compacting.server, session_id)
    sizes = [size for _, size, _, _ in chunks]
    assert merges == len(chunks) == -(-batches // 10)
    assert sizes[:-1] == [600] * (len(chunks) - 1) and sum(sizes) == len(rows)
    assert [parts for _, _, parts, _ in chunks][0] == [RELAY_BATCH] * 10
    read_after = await read_all(compacting, session_id)
    assert read_after == read_before
    assert await laps_of(compacting, session_id) == laps_before != []
    columns = read_after["columns"]
    for name in ("t", "lap", "gear", "fuel"):  # exact channels, and values stored exactly in the small chunks
        assert columns[name] == [row[name] for row in rows], name
    assert [value is None for value in columns["brake"]] == ["brake" not in row for row in rows]


async def test_a_retried_batch_after_its_chunk_was_merged_is_stored_once_with_the_same_ack(
    compacting: Compacting,
) -> None:
    session_id = await new_session(compacting.client, compacting.team.driver)
    rows = as_rows(synthetic_laps(laps=1, lap_time=10.0))
    bodies = relay_bodies(compacting.driver_id, session_id, rows)
    headers = compacting.team.driver.headers
    acks = []
    for body in bodies:
        response = await compacting.client.post("/api/telemetry", json=body, headers=headers)
        assert response.status_code == 201, response.text
        acks.append(response.json())
    assert any(ack["lapsCompleted"] for ack in acks)

    assert (
        await compacting.compactor.compact_session(uuid.UUID(session_id)) == 1
    )  # the live session's first 600
    assert (await stored_chunks(compacting.server, session_id))[0][2] == [RELAY_BATCH] * 10

    for body, ack in zip(bodies, acks, strict=True):
        retry = await compacting.client.post("/api/telemetry", json=body, headers=headers)
        assert retry.status_code == 200, retry.text
        assert retry.json() == {**ack, "duplicate": True}
    chunks = await stored_chunks(compacting.server, session_id)
    assert sum(size for _, size, _, _ in chunks) == len(rows)
    summary = await compacting.client.get(f"/api/sessions/{session_id}/summary", headers=headers)
    assert summary.json()["sampleCount"] == len(rows)
    assert (await read_all(compacting, session_id))["count"] == len(rows)

    following = {**bodies[-1], "seq": len(bodies), "samples": [{"t": 100.0, "speed": 50.0}]}
    response = await compacting.client.post("/api/telemetry", json=following, headers=headers)
    assert response.status_code == 201 and response.json()["chunkNo"] == len(bodies), response.text


async def test_ingest_running_alongside_compaction_loses_nothing(compacting: Compacting) -> None:
    session_id = await new_session(compacting.client, compacting.team.driver)
    rows = relay_rows(laps=2)
    ingest = asyncio.create_task(
        post_batches(
            compacting.client,
            compacting.team.driver.headers,
            compacting.driver_id,
            session_id,
            rows,
            RELAY_BATCH,
        )
    )
    merges_while_ingesting = 0
    while not ingest.done():
        merges_while_ingesting += await compacting.compactor.compact_session(uuid.UUID(session_id))
    acks = await ingest
    await end_session(compacting, session_id)
    await compacting.compactor.compact_session(uuid.UUID(session_id))

    assert merges_while_ingesting > 0
    acked = sum(ack["samples"] for ack in acks)
    read = await read_all(compacting, session_id, channels="t")
    assert read["count"] == acked == len(rows)
    assert read["columns"]["t"] == [row["t"] for row in rows]
    assert [size for _, size, _, _ in await stored_chunks(compacting.server, session_id)][:-1] == [600] * (
        len(rows) // 600
    )


async def test_compacting_one_session_never_touches_another(compacting: Compacting) -> None:
    rows = relay_rows(laps=1)
    sessions = [await new_session(compacting.client, compacting.team.driver) for _ in range(2)]
    for session_id in sessions:
        headers = compacting.team.driver.headers
        await post_batches(compacting.client, headers, compacting.driver_id, session_id, rows, RELAY_BATCH)
        await end_session(compacting, session_id)
    compacted, other = sessions
    other_before = await stored_chunks(compacting.server, other)

    assert await compacting.compactor.compact_session(uuid.UUID(compacted)) > 0

    assert await stored_chunks(compacting.server, other) == other_before
    assert len(await stored_chunks(compacting.server, compacted)) < len(other_before)


async def test_a_cursor_given_out_before_a_merge_still_points_at_the_same_sample(
    compacting: Compacting,
) -> None:
    session_id = await new_session(compacting.client, compacting.team.driver)
    rows = as_rows(synthetic_laps(laps=1))
    await post_batches(
        compacting.client, compacting.team.driver.headers, compacting.driver_id, session_id, rows, RELAY_BATCH
    )
    first_page = await read_all(compacting, session_id, channels="speed", limit=450)  # ends in the 8th batch
    cursor = first_page["nextCursor"]

    await end_session(compacting, session_id)
    assert await compacting.compactor.compact_session(uuid.UUID(session_id)) > 0

    t = list(first_page["columns"]["t"])
    while cursor is not None:
        page = await read_all(compacting, session_id, channels="speed", limit=500, cursor=cursor)
        t += page["columns"]["t"]
        cursor = page["nextCursor"]
    assert t == [row["t"] for row in rows]


async def test_chunks_at_the_live_edge_are_left_alone(compacting: Compacting) -> None:
    session_id = await new_session(compacting.client, compacting.team.driver)
    rows = relay_rows(laps=1)
    await post_batches(
        compacting.client, compacting.team.driver.headers, compacting.driver_id, session_id, rows, RELAY_BATCH
    )
    before = await stored_chunks(compacting.server, session_id)
    pool = compacting.server.services.database.pool
    patient = ChunkCompactor(pool, compacting.server.services.telemetry.codec, settle_s=3600)
    async with patient:
        assert await patient.compact_session(uuid.UUID(session_id)) == 0
        assert await stored_chunks(compacting.server, session_id) == before

        await end_session(compacting, session_id)  # an ended session has no live edge
        assert await patient.compact_pending() > 0
    assert len(await stored_chunks(compacting.server, session_id)) == -(-len(before) // 10)


async def test_laps_found_after_a_merge_match_those_of_a_session_never_merged(
    compacting: Compacting, tmp_path: Path
) -> None:
    rows = as_rows(synthetic_laps(laps=4))
    half = len(rows) // 2 // RELAY_BATCH * RELAY_BATCH
    headers = compacting.team.driver.headers
    merged, unmerged = [await new_session(compacting.client, compacting.team.driver) for _ in range(2)]
    for session_id in (merged, unmerged):
        await post_batches(
            compacting.client, headers, compacting.driver_id, session_id, rows[:half], RELAY_BATCH
        )
    assert await compacting.compactor.compact_session(uuid.UUID(merged)) > 0

    # Another server (no lap detector in memory) takes the rest of both: it rebuilds the detector from the
    # stored chunks, merged for one session and as ingested for the other.
    settings = make_settings(compacting.database_url, tmp_path / "other", compaction_interval_s=0)
    async with run_server(settings) as other, httpx.AsyncClient(base_url=other.url, timeout=30) as client:
        for session_id in (merged, unmerged):
            for body in relay_bodies(compacting.driver_id, session_id, rows[half:]):
                body["seq"] += half // RELAY_BATCH
                response = await client.post("/api/telemetry", json=body, headers=headers)
                assert response.status_code == 201, response.text

    def without_session(laps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in lap.items() if k != "sessionId"} for lap in laps]

    unmerged_laps = without_session(await laps_of(compacting, unmerged))
    assert without_session(await laps_of(compacting, merged)) == unmerged_laps
    assert len(unmerged_laps) >= 4


async def test_migration_keeps_the_acks_of_batches_stored_before_it(
    tmp_path: Path, pg_server_url: str
) -> None:
    """Batches stored by schema version 3 are recognised as retries, with their first ack, after version 4."""
    url = await create_database(pg_server_url)
    try:
        version_3 = [m for m in migrate.available_migrations() if m.version <= 3]
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await conn.execute(migrate.VERSION_TABLE_SQL)
                for migration in version_3:
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
        finally:
            await conn.close()
        settings = make_settings(url, tmp_path / "v3", compaction_interval_s=0, live_coaching=False)
        # The version-3 server is gone; write what it wrote: two chunks, the second completing lap 0.
        conn = await asyncpg.connect(url)
        try:
            driver = await conn.fetchval("INSERT INTO drivers (name) VALUES ('old') RETURNING id")
            session = await conn.fetchval(
                "INSERT INTO sessions (driver_id, name) VALUES ($1, 'old') RETURNING id", driver
            )
            for chunk_no, key, t_start, t_end in ((0, "seq:0", 0.0, 0.9), (1, "seq:1", 1.0, 1.9)):
                await conn.execute(
                    """INSERT INTO telemetry_data (session_id, chunk_no, driver_id, batch_key, t_start, t_end,
                           sample_count, channels, payload)
                       VALUES ($1, $2, $3, $4, $5, $6, 10, '{t}', '\\x00')""",
                    session,
                    chunk_no,
                    driver,
                    key,
                    t_start,
                    t_end,
                )
            await conn.execute(
                """INSERT INTO laps (session_id, lap_number, driver_id, t_start, t_end, lap_time_s)
                   VALUES ($1, 0, $2, 0.0, 1.5, 1.5)""",
                session,
                driver,
            )
        finally:
            await conn.close()
        async with run_server(settings) as server:  # migrates to version 4
            pool = server.services.database.pool
            batches = await pool.fetch(
                """SELECT batch_key, chunk_no, sample_count, laps_completed FROM telemetry_batches
                   WHERE session_id = $1 ORDER BY chunk_no""",
                session,
            )
            assert [tuple(b) for b in batches] == [("seq:0", 0, 10, None), ("seq:1", 1, 10, [0])]
            assert await pool.fetchval("SELECT compact_from_chunk FROM sessions WHERE id = $1", session) == 0
    finally:
        await drop_database(pg_server_url, url)


async def test_merged_chunks_keep_their_samples_clock(compacting: Compacting) -> None:
    headers = compacting.team.driver.headers
    rows = [{"speed": 100.0 + i, "gear": 3.0} for i in range(RELAY_BATCH * 3)]
    sessions = {}
    for clocks in (("server", "server", "server"), ("sample", "server", "timestamp")):
        session = await compacting.client.post(
            "/api/sessions", json={"driverId": compacting.driver_id, "name": "clocks"}, headers=headers
        )
        session_id, started = session.json()["id"], session.json()["startedAt"]
        for seq, clock in enumerate(clocks):
            samples = rows[seq * RELAY_BATCH : (seq + 1) * RELAY_BATCH]
            body: dict[str, Any] = {"driverId": compacting.driver_id, "sessionId": session_id, "seq": seq}
            if clock == "sample":
                samples = [{**row, "t": index / 60} for index, row in enumerate(samples)]
            elif clock == "timestamp":
                body["timestamp"] = started  # the session's start: t = 0 (the batches before are later)
            response = await compacting.client.post(
                "/api/telemetry", json={**body, "samples": samples}, headers=headers
            )
            assert response.status_code == 201 and response.json()["clock"] == clock, response.text
        sessions[session_id] = clocks
    for session_id, clocks in sessions.items():
        before = await read_all(compacting, session_id)
        await end_session(compacting, session_id)
        assert await compacting.compactor.compact_session(uuid.UUID(session_id)) == 1
        clock = await compacting.server.services.database.pool.fetchval(
            "SELECT clock FROM telemetry_data WHERE session_id = $1", uuid.UUID(session_id)
        )
        assert clock == ("server" if set(clocks) == {"server"} else "mixed")
        assert await read_all(compacting, session_id) == before
        assert before["columns"]["speed"] == [row["speed"] for row in rows]
