"""Sessions: create, list (newest first, paged, filtered), summary with stats, end by hand or when idle."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import RunningServer, Team, assert_error
from tests.telemetry.conftest import new_session


async def test_created_session_is_listed_newest_first_in_pages(client: httpx.AsyncClient, team: Team) -> None:
    ids = [await new_session(client, team.driver, car=f"car {i}", type="race") for i in range(5)]
    url = f"/api/sessions/{team.driver.driver_id}"
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, params=params, headers=team.engineer.headers)).json()
        seen += [session["id"] for session in page["sessions"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


async def test_sessions_are_filtered_by_car_track_date_and_best_lap(
    client: httpx.AsyncClient, team: Team, admin: object, driving_session: tuple[Team, str, object]
) -> None:
    _, session_id, _ = driving_session
    await new_session(client, team.driver, car="Other")
    url = f"/api/sessions/{team.driver.driver_id}"
    headers = team.driver.headers

    async def ids(**params: object) -> list[str]:
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [session["id"] for session in response.json()["sessions"]]

    assert await ids(car="gt3") == [session_id]
    assert await ids(bestLapBelow=20.5) == [session_id]
    assert await ids(bestLapBelow=19.5) == []
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await ids(**{"from": tomorrow}) == []
    assert await ids(track=str(uuid.uuid4())) == []


async def test_summary_holds_laps_best_lap_distance_duration_and_samples(
    client: httpx.AsyncClient, driving_session: tuple[Team, str, dict[str, list[float]]]
) -> None:
    team, session_id, columns = driving_session
    summary = (await client.get(f"/api/sessions/{session_id}/summary", headers=team.manager.headers)).json()
    assert summary["sampleCount"] == len(columns["t"])
    assert [lap["lap"] for lap in summary["laps"]] == [0, 1, 2, 3]
    assert [lap["valid"] for lap in summary["laps"]] == [False, True, True, True]
    assert abs(summary["bestLap"]["lapTime"] - 20.0) < 0.02
    assert abs(summary["durationS"] - (columns["t"][-1] - columns["t"][0])) < 1e-3
    mean_speed_ms = sum(columns["speed"]) / len(columns["speed"]) / 3.6
    assert abs(summary["distanceM"] - mean_speed_ms * summary["durationS"]) / summary["distanceM"] < 0.01
    assert {"t", "speed", "lapDistPct"} <= set(summary["channels"])


async def test_end_is_idempotent(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver)
    first = await client.post(f"/api/sessions/{session_id}/end", headers=team.driver.headers)
    again = await client.post(f"/api/sessions/{session_id}/end", headers=team.driver.headers)
    assert first.json()["status"] == again.json()["status"] == "ended"
    assert first.json()["endedAt"] == again.json()["endedAt"]


async def test_idle_session_is_ended(client: httpx.AsyncClient, server: RunningServer, team: Team) -> None:
    idle = await new_session(client, team.driver)
    busy = await new_session(client, team.driver)
    await server.services.database.pool.execute(
        "UPDATE sessions SET last_activity_at = now() - interval '2 hours' WHERE id = $1", uuid.UUID(idle)
    )
    await server.services.sessions.end_idle_sessions(3600)
    statuses = {}
    for session_id in (idle, busy):
        response = await client.get(f"/api/sessions/{session_id}/summary", headers=team.driver.headers)
        statuses[session_id] = response.json()["status"]
    assert statuses == {idle: "ended", busy: "active"}


async def test_other_team_gets_404_on_every_route_taking_an_id(
    client: httpx.AsyncClient,
    other_team: Team,
    driving_session: tuple[Team, str, object],
) -> None:
    team, session_id, _ = driving_session
    headers = other_team.manager.headers
    for path in (
        f"/api/sessions/{team.driver.driver_id}",
        f"/api/sessions/{session_id}/summary",
        f"/api/sessions/{session_id}/telemetry",
        f"/api/sessions/{session_id}/telemetry?format=csv",
        f"/api/sessions/{session_id}/laps",
        f"/api/sessions/{session_id}/laps/1/compare?with=2",
        f"/api/laps/best?driverId={team.driver.driver_id}",
    ):
        assert_error(await client.get(path, headers=headers), 404)
    assert_error(await client.post(f"/api/sessions/{session_id}/end", headers=headers), 404)
    body = {"driverId": team.driver.driver_id, "name": "sneaky"}
    assert_error(await client.post("/api/sessions", json=body, headers=headers), 404)
    # Nothing changed: the session still runs and the driver has no session named "sneaky".
    summary = await client.get(f"/api/sessions/{session_id}/summary", headers=team.driver.headers)
    assert summary.json()["status"] == "active"
    listed = await client.get(f"/api/sessions/{team.driver.driver_id}", headers=team.driver.headers)
    assert "sneaky" not in {session["name"] for session in listed.json()["sessions"]}


async def test_session_for_unknown_track_is_refused(client: httpx.AsyncClient, team: Team) -> None:
    body = {"driverId": team.driver.driver_id, "name": "x", "trackId": str(uuid.uuid4())}
    error = assert_error(await client.post("/api/sessions", json=body, headers=team.driver.headers), 422)
    assert error["details"][0]["field"] == "trackId"
