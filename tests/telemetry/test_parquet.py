"""Telemetry as Parquet (`format=parquet`): the same samples as JSON, the same selection, the same access rules,
and a clear answer from a server without the `parquet` extra."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import TEST_JWT_SECRET, RunningServer, Team, assert_error, free_port

from .conftest import new_session, post_batches

Driving = tuple[Team, str, dict[str, list[float]]]


async def parquet_of(client: httpx.AsyncClient, team: Team, session_id: str, query: str) -> dict[str, Any]:
    """The columns of a Parquet answer (None where a value is null), after checking it is one."""
    response = await client.get(
        f"/api/sessions/{session_id}/telemetry?format=parquet&{query}", headers=team.driver.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert response.headers["content-disposition"].endswith('.parquet"')
    return dict(pq.read_table(io.BytesIO(response.content)).to_pydict())


async def json_of(client: httpx.AsyncClient, team: Team, session_id: str, query: str) -> dict[str, Any]:
    response = await client.get(
        f"/api/sessions/{session_id}/telemetry?limit=100000&{query}", headers=team.driver.headers
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["nextCursor"] is None
    return {name: page["columns"][name] for name in page["channels"]}


def assert_same_values(parquet: dict[str, Any], json: dict[str, Any]) -> None:
    """Same columns in the same order; `t` bit for bit; other channels equal at the float32 JSON shows them
    with (a channel stored as float32 is exact in float64 as well); nulls in the same places."""
    assert list(parquet) == list(json)
    assert parquet["t"] == json["t"]
    for name in json:
        as_parquet = np.array(parquet[name], dtype=np.float64)
        as_json = np.array(json[name], dtype=np.float64)
        np.testing.assert_array_equal(as_parquet.astype(np.float32), as_json.astype(np.float32), err_msg=name)
        np.testing.assert_array_equal(np.isnan(as_parquet), np.isnan(as_json), err_msg=name)


async def test_parquet_holds_the_same_samples_as_json(
    client: httpx.AsyncClient, driving_session: Driving
) -> None:
    team, session_id, columns = driving_session
    parquet = await parquet_of(client, team, session_id, "")
    assert_same_values(parquet, await json_of(client, team, session_id, ""))
    assert len(parquet["t"]) == len(columns["t"])
    assert parquet["gear"] == columns["gear"]


async def test_missing_values_are_null_in_parquet(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver)
    rows: list[dict[str, Any]] = [
        {"t": index / 60, "speed": 100.0 + index, **({"rpm": 7000.0} if index % 3 else {})}
        for index in range(900)
    ]
    assert team.driver.driver_id is not None
    await post_batches(client, team.driver.headers, team.driver.driver_id, session_id, rows, size=300)
    parquet = await parquet_of(client, team, session_id, "")
    assert parquet["rpm"][:4] == [None, 7000.0, 7000.0, None]
    assert_same_values(parquet, await json_of(client, team, session_id, ""))


async def test_parquet_holds_every_sample_past_the_default_page_and_ignores_limit(
    client: httpx.AsyncClient, long_session: tuple[Team, str, list[float]]
) -> None:
    team, session_id, t = long_session
    for query in ("", "limit=100"):
        assert (await parquet_of(client, team, session_id, query))["t"] == t, query


async def test_parquet_applies_channels_filters_and_lap(
    client: httpx.AsyncClient, driving_session: Driving
) -> None:
    team, session_id, _ = driving_session
    for query in ("channels=speed,brake&speed>=190&brake>0.5", "channels=lap&lap=2", "from=10&to=20&gear=4"):
        parquet = await parquet_of(client, team, session_id, query)
        assert parquet["t"], query
        assert_same_values(parquet, await json_of(client, team, session_id, query))
    assert set(parquet["gear"]) == {4.0}


async def test_parquet_starts_at_the_cursor(client: httpx.AsyncClient, driving_session: Driving) -> None:
    team, session_id, columns = driving_session
    url = f"/api/sessions/{session_id}/telemetry"
    page = (await client.get(url, params={"limit": 1000}, headers=team.driver.headers)).json()
    parquet = await parquet_of(client, team, session_id, f"channels=speed&cursor={page['nextCursor']}")
    assert parquet["t"] == columns["t"][1000:]


async def test_another_teams_user_gets_not_found(
    client: httpx.AsyncClient, driving_session: Driving, other_team: Team
) -> None:
    _, session_id, _ = driving_session
    response = await client.get(
        f"/api/sessions/{session_id}/telemetry?format=parquet", headers=other_team.engineer.headers
    )
    assert_error(response, 404)


async def test_parquet_takes_no_points(client: httpx.AsyncClient, driving_session: Driving) -> None:
    team, session_id, _ = driving_session
    response = await client.get(
        f"/api/sessions/{session_id}/telemetry?format=parquet&points=100", headers=team.driver.headers
    )
    assert assert_error(response, 422)["details"][0]["field"] == "points"


@pytest.fixture
def server_without_pyarrow(
    server: RunningServer, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A second `pitbox serve` on the same database, started where `import pyarrow` fails as if the package
    were not installed (a `pyarrow` package that raises ImportError comes first on its path)."""
    hidden = tmp_path / "hide" / "pyarrow"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("pyarrow is not installed")\n')
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hidden.parent), os.environ.get("PYTHONPATH", "")]),
        "DATABASE_URL": str(server.settings.database_url),
        "JWT_SECRET": TEST_JWT_SECRET,
        "DATA_DIR": str(tmp_path / "data"),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen([sys.executable, "-m", "pitbox", "serve"], env=env, stdout=subprocess.DEVNULL)
    yield proc, f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=60)


async def test_a_server_without_the_parquet_extra_says_which_to_install(
    driving_session: Driving, server_without_pyarrow: tuple[subprocess.Popen[bytes], str]
) -> None:
    team, session_id, _ = driving_session
    proc, url = server_without_pyarrow
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(600):  # until it has started; the behaviour itself is not timed
            assert proc.poll() is None, "the server exited"
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/health", timeout=1)).status_code == 200:
                    break
            await asyncio.sleep(0.1)
        telemetry = f"/api/sessions/{session_id}/telemetry"
        response = await client.get(f"{telemetry}?format=parquet", headers=team.driver.headers)
        error = assert_error(response, 422, "parquet_unavailable")
        assert error["details"][0]["field"] == "format"
        assert "pitbox[parquet]" in error["message"]
        assert (await client.get(f"{telemetry}?format=csv", headers=team.driver.headers)).status_code == 200
