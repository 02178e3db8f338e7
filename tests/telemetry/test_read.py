"""Reading telemetry back: pages with cursors, channels, filters, laps, CSV, downsampling, lap comparison."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import Team, assert_error
from tests.telemetry.conftest import as_rows, new_session, post_batches, synthetic_laps

Driving = tuple[Team, str, dict[str, list[float]]]


async def test_pages_follow_the_cursor_and_cover_every_sample_once(
    client: httpx.AsyncClient, driving_session: Driving
) -> None:
    team, session_id, columns = driving_session
    url = f"/api/sessions/{session_id}/telemetry"
    t: list[float] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, "channels": "speed"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(url, params=params, headers=team.engineer.headers)).json()
        assert page["channels"] == ["t", "speed"]
        assert page["count"] <= 1000
        t += page["columns"]["t"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert t == columns["t"]


async def test_filters_pick_the_samples_users_ask_for(
    client: httpx.AsyncClient, driving_session: Driving
) -> None:
    team, session_id, columns = driving_session
    response = await client.get(
        f"/api/sessions/{session_id}/telemetry?channels=speed,brake&speed>=190&brake>0.5&limit=100000",
        headers=team.driver.headers,
    )
    assert response.status_code == 200, response.text
    speed, brake = np.array(columns["speed"], dtype=np.float32), np.array(columns["brake"], dtype=np.float32)
    expected = np.array(columns["t"])[(speed >= 190) & (brake > 0.5)]
    assert response.json()["columns"]["t"] == expected.tolist()


async def test_lap_returns_the_samples_of_that_lap(
    client: httpx.AsyncClient, driving_session: Driving
) -> None:
    team, session_id, _ = driving_session
    laps = (await client.get(f"/api/sessions/{session_id}/laps", headers=team.driver.headers)).json()
    lap2 = next(lap for lap in laps if lap["lap"] == 2)
    page = (
        await client.get(f"/api/sessions/{session_id}/telemetry?lap=2", headers=team.driver.headers)
    ).json()
    t = page["columns"]["t"]
    assert lap2["tStart"] <= t[0] < lap2["tStart"] + 1 / 60
    assert lap2["tEnd"] - 1 / 60 - 1e-5 < t[-1] < lap2["tEnd"]
    assert set(page["columns"]["lap"]) == {2}


async def test_csv_has_a_header_and_one_row_per_sample(
    client: httpx.AsyncClient, driving_session: Driving
) -> None:
    team, session_id, columns = driving_session
    response = await client.get(
        f"/api/sessions/{session_id}/telemetry?format=csv&channels=speed,gear", headers=team.driver.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["t", "speed", "gear"]
    assert len(rows) - 1 == len(columns["t"])
    t, speed, gear = (float(value) for value in rows[10])
    # Measured channels are stored with 16 mantissa bits (relative error <= 2**-17); time is exact.
    assert speed == pytest.approx(columns["speed"][9], rel=2e-5)
    assert (t, gear) == (
        columns["t"][9],
        columns["gear"][9],
    )


async def test_csv_text_cells_never_start_a_formula_and_numbers_stay_numbers(
    client: httpx.AsyncClient, team: Team
) -> None:
    # Issue 17, item 6: channel names beginning with +, - or @ became header cells a spreadsheet evaluates.
    formula = "@SUM(1+1)*cmd|' /C calc'"
    driver = str(team.driver.driver_id)
    session = await new_session(client, team.engineer, driver)
    rows = [{"t": i / 60, formula: 1.0, "+1": -2.5, "-cmd": -i, "speed": 200.0} for i in range(3)]
    stored = await client.post(
        "/api/telemetry",
        json={"driverId": driver, "sessionId": session, "samples": rows},
        headers=team.engineer.headers,
    )
    assert stored.status_code == 201, stored.text
    response = await client.get(
        f"/api/sessions/{session}/telemetry?format=csv", headers=team.engineer.headers
    )
    assert response.status_code == 200
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0][0] == "t"
    assert sorted(table[0][1:]) == sorted(["'" + formula, "'+1", "'-cmd", "speed"])
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in table[0])
    columns = {name: [row[i] for row in table[1:]] for i, name in enumerate(table[0])}
    assert columns["'+1"] == ["-2.5"] * 3 and columns["'-cmd"] == ["0", "-1", "-2"]
    assert columns["'" + formula] == ["1"] * 3 and columns["speed"] == ["200"] * 3


async def test_csv_is_streamed_whole_past_the_default_page_and_ignores_limit(
    client: httpx.AsyncClient, long_session: tuple[Team, str, list[float]]
) -> None:
    team, session_id, t = long_session
    url = f"/api/sessions/{session_id}/telemetry"
    page = (await client.get(url, headers=team.driver.headers)).json()
    assert page["count"] == 10_000 and page["nextCursor"], "JSON stops at its default page"
    for query in ("format=csv", "format=csv&limit=100"):
        response = await client.get(f"{url}?{query}&channels=speed", headers=team.driver.headers)
        assert response.status_code == 200, response.text
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == ["t", "speed"]
        assert [float(row[0]) for row in rows[1:]] == t, query


async def test_downsampling_gives_the_points_asked_for(
    client: httpx.AsyncClient, driving_session: Driving
) -> None:
    team, session_id, columns = driving_session
    page = (
        await client.get(
            f"/api/sessions/{session_id}/telemetry?points=300&channels=speed,throttle",
            headers=team.driver.headers,
        )
    ).json()
    assert page["count"] == len(columns["t"])
    for name in ("speed", "throttle"):
        series = page["series"][name]
        assert len(series["t"]) == len(series["v"]) == 300
        assert series["t"][0] == columns["t"][0] and series["t"][-1] == columns["t"][-1]


async def test_two_points_are_the_first_and_last_sample_not_a_500(
    client: httpx.AsyncClient, driving_session: Driving
) -> None:
    # Issue 17, item 2: the query allowed points=2 and the LTTB library panicked below 3 (a 500, text/plain).
    team, session_id, columns = driving_session
    response = await client.get(
        f"/api/sessions/{session_id}/telemetry?points=2&channels=speed", headers=team.driver.headers
    )
    assert response.status_code == 200, response.text
    series = response.json()["series"]["speed"]
    assert series["t"] == [columns["t"][0], columns["t"][-1]]
    assert series["v"] == pytest.approx([columns["speed"][0], columns["speed"][-1]], rel=2e-5)


async def test_lap_compared_with_itself_has_no_delta_and_with_another_the_lap_time_difference(
    client: httpx.AsyncClient, driving_session: Driving
) -> None:
    team, session_id, _ = driving_session
    url = f"/api/sessions/{session_id}/laps/1/compare"
    same = (await client.get(url, params={"with": f"{session_id}:1"}, headers=team.driver.headers)).json()
    assert max(abs(value) for value in same["delta"]) < 1e-9
    other = (await client.get(url, params={"with": "2", "points": 500}, headers=team.driver.headers)).json()
    assert len(other["distance"]) == len(other["delta"]) == len(other["a"]["channels"]["speed"]) == 500
    # The coaching's sign: positive where this lap (a) is behind the other (b), the reference.
    assert abs(other["delta"][-1] - (other["a"]["lapTime"] - other["b"]["lapTime"])) < 1e-6


async def test_a_lap_is_compared_only_with_one_driven_on_the_same_track(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    # Review after issue 17: /compare aligned laps of two circuits on one distance axis and answered a delta.
    driver = team.driver
    assert driver.driver_id is not None

    async def driven(lap_time: float = 20.0, **fields: Any) -> str:
        session_id = await new_session(client, driver, **fields)
        rows = as_rows(synthetic_laps(lap_time=lap_time))
        await post_batches(client, driver.headers, driver.driver_id or "", session_id, rows)
        return session_id

    tag = team.id[:8]
    here = await driven(trackName=f"Thruxton {tag}")
    twin_layout = await driven(
        trackName=f"Thruxton {tag}", trackConfig="Club"
    )  # the same length, another track
    elsewhere = await driven(trackName=f"Castle Combe {tag}")
    again = await driven(trackName=f"Thruxton {tag}")
    unnamed_short, unnamed_long = await driven(), await driven(lap_time=40.0)  # no track: 833 m, 1667 m

    def compare(session_id: str, other: str) -> Any:
        return client.get(
            f"/api/sessions/{session_id}/laps/1/compare",
            params={"with": f"{other}:1"},
            headers=driver.headers,
        )

    for session_id, other in ((here, twin_layout), (here, elsewhere), (unnamed_short, unnamed_long)):
        error = assert_error(await compare(session_id, other), 422, "reference_other_track")
        assert error["details"] == [{"field": "with", "message": "another track"}], error
    for session_id, other in ((here, again), (again, here), (unnamed_short, here)):
        answer = await compare(session_id, other)
        assert answer.status_code == 200, answer.text
        assert answer.json()["trackLength"] == pytest.approx(150 / 3.6 * 20.0, rel=0.01)
    # The refusal says nothing about sessions the caller may not read: those are not found, whatever their track.
    theirs = await new_session(client, other_team.driver, trackName=f"Castle Combe {tag}")
    assert_error(await compare(here, theirs), 404)
    assert_error(await compare(here, "not-a-session"), 422)


async def test_best_lap_per_driver_track_and_car(client: httpx.AsyncClient, driving_session: Driving) -> None:
    team, session_id, _ = driving_session
    best = (await client.get("/api/laps/best", params={"car": "GT3"}, headers=team.manager.headers)).json()
    mine = [lap for lap in best if lap["driverId"] == team.driver.driver_id]
    assert len(mine) == 1 and mine[0]["sessionId"] == session_id and mine[0]["valid"]


async def test_unknown_channel_and_bad_parameters_are_refused(
    client: httpx.AsyncClient, driving_session: Driving
) -> None:
    team, session_id, _ = driving_session
    url = f"/api/sessions/{session_id}/telemetry"
    for query, field in (
        ("channels=warp", "channels"),
        ("warp>3", "warp"),
        ("speed>=fast", "speed"),
        ("points=1", "points"),
        ("limit=0", "limit"),
        ("format=xml", "format"),
        ("cursor=%%%", "cursor"),
    ):
        error = assert_error(await client.get(f"{url}?{query}", headers=team.driver.headers), 422)
        assert error["details"][0]["field"] == field, (query, error)
