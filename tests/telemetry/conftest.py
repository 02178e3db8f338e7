"""Helpers for the telemetry tests: sessions created over HTTP, synthetic laps, ingest of batches."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import Actor, Team


async def new_session(
    client: httpx.AsyncClient, actor: Actor, driver_id: str | None = None, **fields: Any
) -> str:
    """Create a session for the driver (the actor's own by default) and return its id."""
    body = {"driverId": driver_id or actor.driver_id, "name": f"run {uuid.uuid4().hex[:6]}", **fields}
    response = await client.post("/api/sessions", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def synthetic_laps(
    laps: int = 3, lap_time: float = 20.0, hz: float = 60.0, start_pct: float = 0.8
) -> dict[str, Any]:
    """Columns of a car lapping steadily: starts at `start_pct` (a pit exit), crosses the line `laps` times."""
    n = int((laps + 1 - start_pct) * lap_time * hz) + 5
    t = np.arange(n) / hz
    distance = start_pct + t / lap_time
    pct = distance % 1.0
    lap = np.floor(distance)
    speed = 150 + 50 * np.sin(2 * np.pi * pct)
    return {
        "t": t.round(6).tolist(),
        "lapDistPct": pct.tolist(),
        "lap": lap.tolist(),
        "speed": speed.tolist(),
        "throttle": (0.5 + 0.5 * np.cos(2 * np.pi * pct)).tolist(),
        "brake": np.clip(-np.cos(2 * np.pi * pct), 0, 1).tolist(),
        "gear": np.clip(np.round(speed / 40), 1, 6).tolist(),
    }


def as_rows(
    columns: dict[str, list[float]], start: int = 0, stop: int | None = None
) -> list[dict[str, float]]:
    """Rows of a slice of columns."""
    names = list(columns)
    stop = len(columns["t"]) if stop is None else stop
    return [{name: columns[name][i] for name in names} for i in range(start, stop)]


async def post_batches(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    driver_id: str,
    session_id: str,
    rows: list[dict[str, Any]],
    size: int = 600,
) -> list[dict[str, Any]]:
    """POST rows in batches with sequence numbers; every one must be accepted."""
    acks = []
    for seq, start in enumerate(range(0, len(rows), size)):
        body = {
            "driverId": driver_id,
            "sessionId": session_id,
            "seq": seq,
            "samples": rows[start : start + size],
        }
        response = await client.post("/api/telemetry", json=body, headers=headers)
        assert response.status_code == 201, response.text
        acks.append(response.json())
    return acks


@pytest.fixture
async def driving_session(client: httpx.AsyncClient, team: Team) -> tuple[Team, str, dict[str, Any]]:
    """A session of the team's driver holding 3 synthetic laps (after a pit exit), posted in 600-row batches."""
    session_id = await new_session(client, team.driver, car="GT3")
    columns = synthetic_laps()
    assert team.driver.driver_id is not None
    await post_batches(client, team.driver.headers, team.driver.driver_id, session_id, as_rows(columns))
    return team, session_id, columns


#: More samples than a JSON page holds by default (10,000, docs/telemetry.md): CSV and Parquet must give all.
LONG_SESSION_SAMPLES = 12_345


@pytest.fixture
async def long_session(client: httpx.AsyncClient, team: Team) -> tuple[Team, str, list[float]]:
    """A session of the team's driver holding LONG_SESSION_SAMPLES samples (sent as columns); their `t`."""
    session_id = await new_session(client, team.driver)
    t = [index / 60 for index in range(LONG_SESSION_SAMPLES)]
    for batch, start in enumerate(range(0, len(t), 5000)):
        part = t[start : start + 5000]
        body = {
            "driverId": team.driver.driver_id,
            "sessionId": session_id,
            "seq": batch,
            "columns": {"t": part, "speed": [100.0 + (value % 50) for value in part]},
        }
        response = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
        assert response.status_code == 201, response.text
    return team, session_id, t
