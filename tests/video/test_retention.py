"""Old frames are pruned (rows and files together, also from the command line); a deleted driver's session files go."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

from pitbox.video.service import RETENTION_INTERVAL_S
from tests.conftest import (
    TEST_JWT_SECRET,
    Actor,
    RunningServer,
    Team,
    World,
    assert_error,
    create_database,
    drop_database,
    make_settings,
    run_server,
    wait_until,
)
from tests.video.conftest import (
    at_second,
    files_of_session,
    frame_rows,
    new_session,
    noise_image,
    post_base64,
)

REPO = Path(__file__).resolve().parents[2]


async def frames_in(
    client: httpx.AsyncClient, team: Team, session_id: str, count: int, seed: int
) -> list[str]:
    """Upload `count` distinct frames an hour apart (so they land in different folders); their ids."""
    ids = []
    for i in range(count):
        response = await post_base64(
            client,
            team.driver.headers,
            str(team.driver.driver_id),
            session_id,
            noise_image("JPEG", size=(16, 16), seed=seed + i),
            at_second(3600 * i),
        )
        ids.append(response.json()["id"])
    return ids


async def age_frames(server: RunningServer, frame_ids: list[str], days: int) -> None:
    """Pretend these frames were stored `days` ago."""
    await server.services.database.pool.execute(
        "UPDATE video_frames SET created_at = now() - make_interval(days => $2) WHERE id = ANY($1::uuid[])",
        [uuid.UUID(i) for i in frame_ids],
        days,
    )


async def test_prune_deletes_old_frames_rows_and_files_together(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    old = await frames_in(client, team, session_id, 3, seed=3000)
    recent = await frames_in(client, team, session_id, 1, seed=3100)
    await age_frames(server, old, days=8)

    deleted = await server.services.video.prune_older_than(timedelta(days=7))

    assert deleted >= 3
    assert await frame_rows(server, session_id) == 1
    remaining = files_of_session(server, session_id)
    assert len(remaining) == 1
    kept = await client.get(f"/api/video/{recent[0]}", headers=team.driver.headers)
    assert kept.status_code == 200
    assert remaining[0].read_bytes() == kept.content
    gone = await client.get(f"/api/video/{old[0]}", headers=team.driver.headers)
    assert gone.status_code == 404


async def test_prune_command_deletes_old_frames(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    old = await frames_in(client, team, session_id, 2, seed=3200)
    await age_frames(server, old, days=30)
    env = {
        **os.environ,
        "DATABASE_URL": server.settings.database_url or "",
        "DATA_DIR": str(server.settings.data_dir),
        "JWT_SECRET": TEST_JWT_SECRET,
        "PYTHONPATH": str(REPO / "src"),
        "LOG_LEVEL": "warning",
    }

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pitbox",
        "prune",
        "--video-older-than",
        "7d",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()

    assert process.returncode == 0, err.decode()
    assert json.loads(out)["deletedVideoFrames"] >= 2  # the result alone on stdout, as JSON
    assert await frame_rows(server, session_id) == 0
    assert files_of_session(server, session_id) == []


async def test_deleting_a_driver_deletes_their_sessions_frames_and_files(
    client: httpx.AsyncClient, server: RunningServer, world: World, team: Team, admin: Actor
) -> None:
    sessions = [await new_session(client, team.driver) for _ in range(2)]
    for seed, session_id in enumerate(sessions):
        await frames_in(client, team, session_id, 2, seed=3300 + 10 * seed)
        assert len(files_of_session(server, session_id)) == 2
    kept = await new_session(client, (other := await world.team()).driver)
    await frames_in(client, other, kept, 1, seed=3400)

    response = await client.delete(f"/api/drivers/{team.driver.driver_id}", headers=admin.headers)

    assert response.status_code == 204, response.text
    for session_id in sessions:
        assert await frame_rows(server, session_id) == 0
        assert files_of_session(server, session_id) == []
        assert not (Path(server.settings.data_dir) / "video" / session_id).exists()
    assert await frame_rows(server, kept) == 1  # another driver's frames stay
    assert len(files_of_session(server, kept)) == 1


async def test_a_server_with_video_retention_days_prunes_old_frames(
    pg_server_url: str, tmp_path: Path
) -> None:
    database_url = await create_database(pg_server_url)
    settings = make_settings(database_url, tmp_path / "data", video_retention_days=7, ingest_processes=0)
    try:
        async with run_server(settings) as running, httpx.AsyncClient(base_url=running.url) as client:
            team = await World(running.services).team()
            session_id = await new_session(client, team.driver)
            old = await frames_in(client, team, session_id, 2, seed=3400)
            recent = await frames_in(client, team, session_id, 1, seed=3500)
            await age_frames(running, old, days=8)
        # It prunes when it starts and then every hour (RETENTION_INTERVAL_S): here, the next start.
        assert RETENTION_INTERVAL_S == 3600
        async with run_server(settings) as running, httpx.AsyncClient(base_url=running.url) as client:

            async def pruned() -> bool:
                return await frame_rows(running, session_id) == 1

            await wait_until(pruned, "the old frames to be pruned")
            assert_error(await client.get(f"/api/video/{old[0]}", headers=team.driver.headers), 404)
            kept = await client.get(f"/api/video/{recent[0]}", headers=team.driver.headers)
            assert kept.status_code == 200, kept.text
            assert [path.read_bytes() for path in files_of_session(running, session_id)] == [kept.content]
    finally:
        await drop_database(pg_server_url, database_url)
