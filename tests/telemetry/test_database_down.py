"""With its database stopped, ingest answers 503 and nothing is half-written (checked after a restart)."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import httpx
import pgserver
import pytest

from tests.conftest import World, assert_error, make_settings, run_server
from tests.telemetry.conftest import new_session


async def test_ingest_with_the_database_stopped_answers_503_and_stores_nothing(
    tmp_path: Path, pg_dir: Path
) -> None:
    database = pgserver.get_server(pg_dir, cleanup_mode="stop")
    try:
        url = database.get_uri()
        async with run_server(make_settings(url, tmp_path / "data")) as server:
            team = await World(server.services).team()
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                session_id = await new_session(client, team.driver)
                samples = [{"t": i / 60, "speed": 100.0, "lapDistPct": i / 600} for i in range(600)]
                body = {
                    "driverId": team.driver.driver_id,
                    "sessionId": session_id,
                    "seq": 0,
                    "samples": samples,
                }
                assert (
                    await client.post("/api/telemetry", json=body, headers=team.driver.headers)
                ).status_code == 201

                database.cleanup()  # stops PostgreSQL underneath the running server
                body = {**body, "seq": 1, "samples": [{**s, "t": s["t"] + 10} for s in samples]}
                response = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
                assert_error(response, 503, "unavailable")

        database = pgserver.get_server(pg_dir, cleanup_mode="stop")
        conn = await asyncpg.connect(database.get_uri())
        try:
            chunks = await conn.fetchval(
                "SELECT count(*) FROM telemetry_data WHERE session_id = $1", uuid.UUID(session_id)
            )
            samples_counted = await conn.fetchval(
                "SELECT sample_count FROM sessions WHERE id = $1", uuid.UUID(session_id)
            )
        finally:
            await conn.close()
        assert (chunks, samples_counted) == (1, 600)
    finally:
        database.cleanup()


pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
