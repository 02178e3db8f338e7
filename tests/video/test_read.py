"""Reading a session's frames: a time range in pages, and the frame nearest a moment."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from tests.conftest import Team, assert_error
from tests.video.conftest import at_second, new_session, noise_image, post_base64


async def upload_at(
    client: httpx.AsyncClient, team: Team, session_id: str, seconds: list[float]
) -> list[str]:
    """One distinct frame at each of BASE_TIME + seconds; their ids in that order."""
    ids = []
    for i, second in enumerate(seconds):
        image = noise_image("JPEG", size=(32, 24), seed=1000 + i)
        response = await post_base64(
            client, team.driver.headers, str(team.driver.driver_id), session_id, image, at_second(second)
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def test_frames_are_listed_in_time_order_within_a_range_page_by_page(
    client: httpx.AsyncClient, team: Team
) -> None:
    session_id = await new_session(client, team.driver)
    ids = await upload_at(client, team, session_id, [5, 1, 3, 2, 4, 0, 6])
    by_time = [ids[5], ids[1], ids[3], ids[2], ids[4], ids[0], ids[6]]
    seen: list[str] = []
    cursor = None

    while True:
        params: dict[str, str | int] = {
            "from": at_second(1).isoformat(),
            "to": at_second(6).isoformat(),
            "limit": 2,
        }
        if cursor:
            params["cursor"] = cursor
        page = await client.get(
            f"/api/sessions/{session_id}/video", params=params, headers=team.engineer.headers
        )
        assert page.status_code == 200, page.text
        seen += [frame["id"] for frame in page.json()["frames"]]
        cursor = page.json()["nextCursor"]
        if cursor is None:
            break

    assert seen == by_time[1:6]


async def test_bad_cursor_is_refused(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver)

    response = await client.get(
        f"/api/sessions/{session_id}/video", params={"cursor": "bm9wZQ"}, headers=team.driver.headers
    )

    assert_error(response, 422, "bad_cursor")


async def test_nearest_frame_is_the_closest_on_either_side(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver)
    ids = await upload_at(client, team, session_id, [0, 10, 20])
    url = f"/api/sessions/{session_id}/video/nearest"

    answers = {
        asked: (
            await client.get(url, params={"t": at_second(asked).isoformat()}, headers=team.manager.headers)
        )
        for asked in (-5, 4, 6, 10, 14.9, 15.1, 99)
    }

    nearest = {asked: response.json()["id"] for asked, response in answers.items()}
    assert nearest == {-5: ids[0], 4: ids[0], 6: ids[1], 10: ids[1], 14.9: ids[1], 15.1: ids[2], 99: ids[2]}
    assert answers[6].json()["offsetMs"] == 4000
    assert answers[99].json()["offsetMs"] == -79000


async def test_nearest_frame_to_a_telemetry_time(client: httpx.AsyncClient, team: Team) -> None:
    created = await client.post(
        "/api/sessions",
        json={"driverId": team.driver.driver_id, "name": "braking points"},
        headers=team.driver.headers,
    )
    session_id = created.json()["id"]
    started = datetime.fromisoformat(created.json()["startedAt"])
    ids = []
    for i, offset in enumerate([30.0, 31.0, 32.0]):
        response = await post_base64(
            client,
            team.driver.headers,
            str(team.driver.driver_id),
            session_id,
            noise_image("PNG", size=(16, 16), seed=2000 + i),
            started + timedelta(seconds=offset),
        )
        ids.append(response.json()["id"])

    response = await client.get(
        f"/api/sessions/{session_id}/video/nearest",
        params={"sessionTime": 31.2},
        headers=team.engineer.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["id"] == ids[1]


async def test_nearest_frame_of_a_session_without_frames_is_not_found(
    client: httpx.AsyncClient, team: Team
) -> None:
    session_id = await new_session(client, team.driver)

    response = await client.get(
        f"/api/sessions/{session_id}/video/nearest",
        params={"t": at_second(0).isoformat()},
        headers=team.driver.headers,
    )

    assert_error(response, 404, "no_frames")


async def test_nearest_frame_needs_exactly_one_moment(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team.driver)

    response = await client.get(f"/api/sessions/{session_id}/video/nearest", headers=team.driver.headers)

    assert_error(response, 422, "invalid_query")


async def test_nearest_frame_to_a_lap_distance_shows_what_the_driver_saw_there(
    client: httpx.AsyncClient, team: Team
) -> None:
    from tests.telemetry.conftest import as_rows, post_batches, synthetic_laps

    created = await client.post(
        "/api/sessions",
        json={"driverId": team.driver.driver_id, "name": "braking point"},
        headers=team.driver.headers,
    )
    session_id = created.json()["id"]
    started = datetime.fromisoformat(created.json()["startedAt"])
    # 20 s laps from a pit exit at 80% of the lap: lap 1 runs from t = 4 s to t = 24 s, half-way at t = 14 s.
    columns = synthetic_laps(laps=2, lap_time=20.0, start_pct=0.8)
    await post_batches(client, team.driver.headers, str(team.driver.driver_id), session_id, as_rows(columns))
    ids = []
    for i, offset in enumerate([13.0, 14.0, 15.0]):
        response = await post_base64(
            client,
            team.driver.headers,
            str(team.driver.driver_id),
            session_id,
            noise_image("PNG", size=(16, 16), seed=3000 + i),
            started + timedelta(seconds=offset),
        )
        ids.append(response.json()["id"])
    url = f"/api/sessions/{session_id}/video/nearest"
    response = await client.get(url, params={"lap": 1, "lapDistPct": 0.5}, headers=team.engineer.headers)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == ids[1]
    assert_error(await client.get(url, params={"lap": 1}, headers=team.engineer.headers), 422)
    assert_error(
        await client.get(url, params={"lap": 9, "lapDistPct": 0.5}, headers=team.engineer.headers), 404
    )
