"""Sessions: create, list (newest first, paged, filtered), summary with stats, end by hand or when idle."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from pitbox.client import PitboxClient
from tests.conftest import RunningServer, Team, assert_error
from tests.telemetry.conftest import new_session


async def test_created_session_is_listed_newest_first_in_pages(client: httpx.AsyncClient, team: Team) -> None:
    ids = [
        await new_session(client, team.driver, car="GT3 Cup", name=f"race {i}", type="race") for i in range(5)
    ]
    await new_session(client, team.driver, car="Kart", type="race")  # filtered out on every page
    url: str | None = f"/api/sessions/{team.driver.driver_id}?limit=2&car=gt3+cup"
    seen: list[str] = []
    pages = 0
    while url is not None:
        response = await client.get(url, headers=team.engineer.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert isinstance(page, list) and len(page) <= 2
        seen += [session["id"] for session in page]
        pages += 1
        # RFC 8288, as GitHub pages: the next page's URL in `Link`, the query kept, none after the last page.
        url = response.links.get("next", {}).get("url")
        if url is not None:
            assert response.headers["link"].endswith('>; rel="next"')
            assert "limit=2" in url and "car=gt3+cup" in url and "cursor=" in url
    assert seen == list(reversed(ids)) and pages == 3


async def test_the_python_client_follows_the_pages(server: RunningServer, team: Team) -> None:
    async with PitboxClient(server.url, token=team.driver.token) as pitbox:
        ids = [
            (await pitbox.create_session(team.driver.driver_id or "", f"s{i}", car="F4"))["id"]
            for i in range(3)
        ]
        pages = [
            page async for page in pitbox.session_pages(team.driver.driver_id or "", page_size=2, car="F4")
        ]
        assert [len(page) for page in pages] == [2, 1]
        listed = await pitbox.sessions(team.driver.driver_id or "", car="F4")
        assert [session["id"] for session in listed] == list(reversed(ids))
        assert len(await pitbox.sessions(team.driver.driver_id or "", limit=1)) == 1


async def test_a_bad_cursor_is_refused(client: httpx.AsyncClient, team: Team) -> None:
    url = f"/api/sessions/{team.driver.driver_id}?cursor=not-a-cursor"
    assert_error(await client.get(url, headers=team.driver.headers), 422, "bad_cursor")


async def test_a_best_lap_filter_that_is_no_lap_time_is_refused(
    client: httpx.AsyncClient, team: Team
) -> None:
    url = f"/api/sessions/{team.driver.driver_id}"
    for value in ("inf", "nan", "1e400", "0", "-5", "86401"):
        error = assert_error(
            await client.get(url, params={"bestLapBelow": value}, headers=team.driver.headers), 422
        )
        assert error["details"][0]["field"] == "query.bestLapBelow", (value, error)


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
        return [session["id"] for session in response.json()]

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
    assert "sneaky" not in {session["name"] for session in listed.json()}


async def test_session_for_unknown_track_is_refused(client: httpx.AsyncClient, team: Team) -> None:
    body = {"driverId": team.driver.driver_id, "name": "x", "trackId": str(uuid.uuid4())}
    error = assert_error(await client.post("/api/sessions", json=body, headers=team.driver.headers), 422)
    assert error["details"][0]["field"] == "trackId"
