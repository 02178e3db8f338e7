"""Sessions carry their track and car: a track named by a client is matched by name, layout and length (within
1 %) or created, in the one shared catalogue."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import Actor, Team, assert_error


async def create(client: httpx.AsyncClient, actor: Actor, **fields: Any) -> dict[str, Any]:
    body = {"driverId": actor.driver_id, "name": "run", **fields}
    response = await client.post("/api/sessions", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_a_session_shows_the_track_and_car_it_was_created_with(
    client: httpx.AsyncClient, team: Team
) -> None:
    name = f"Martinsville Speedway {team.id[:8]}"
    session = await create(
        client,
        team.driver,
        trackName=name,
        trackConfig="",
        trackLengthM=846.0,
        car="Modified - Tour",
        sim="iracing",
    )
    assert (session["trackName"], session["trackConfig"], session["trackLengthM"]) == (name, "", 846.0)
    assert (session["car"], session["sim"]) == ("Modified - Tour", "iracing")
    summary = (
        await client.get(f"/api/sessions/{session['id']}/summary", headers=team.engineer.headers)
    ).json()
    assert summary["trackId"] == session["trackId"] and summary["car"] == "Modified - Tour"
    track = (await client.get(f"/api/tracks/{session['trackId']}", headers=team.driver.headers)).json()
    assert (track["name"], track["configuration"], track["lengthM"]) == (name, "", 846.0)


async def test_a_track_is_matched_by_name_layout_and_length_within_one_percent(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    name = f"Red Bull Ring {team.id[:8]}"
    first = await create(client, team.driver, trackName=name, trackConfig="Grand Prix", trackLengthM=4318.0)
    # Another team, another spelling of the case, a length 0.5 % off: the same circuit.
    same = await create(
        client, other_team.driver, trackName=name.upper(), trackConfig="grand prix", trackLengthM=4296.0
    )
    assert same["trackId"] == first["trackId"] and same["trackLengthM"] == 4318.0
    # Another layout of the circuit, or a length 2 % off: other tracks.
    south = await create(client, team.driver, trackName=name, trackConfig="South Loop", trackLengthM=2336.0)
    longer = await create(client, team.driver, trackName=name, trackConfig="Grand Prix", trackLengthM=4404.0)
    assert len({first["trackId"], south["trackId"], longer["trackId"]}) == 3
    # No length given: the layout's track with a known length is taken.
    unmeasured = await create(client, team.driver, trackName=name, trackConfig="South Loop")
    assert unmeasured["trackId"] == south["trackId"]


async def test_a_track_without_a_length_keeps_the_first_one_measured(
    client: httpx.AsyncClient, team: Team
) -> None:
    name = f"Calder {team.id[:8]}"
    created = await client.post("/api/tracks", json={"name": name}, headers=team.engineer.headers)
    assert created.status_code == 201, created.text
    session = await create(client, team.driver, trackName=name, trackLengthM=2257.5)
    assert session["trackId"] == created.json()["id"] and session["trackLengthM"] == 2257.5


async def test_sessions_naming_a_new_track_at_once_get_one_track(
    client: httpx.AsyncClient, team: Team
) -> None:
    name = f"Kyalami {team.id[:8]}"
    sessions = await asyncio.gather(
        *(create(client, team.driver, trackName=name, trackLengthM=4522.0) for _ in range(6))
    )
    assert len({session["trackId"] for session in sessions}) == 1


async def test_bad_track_fields_are_a_422_naming_the_field(client: httpx.AsyncClient, team: Team) -> None:
    for field, value in (("trackName", "x" * 201), ("trackLengthM", -5), ("trackConfig", 7)):
        body = {"driverId": team.driver.driver_id, "name": "run", "trackName": "Somewhere", field: value}
        error = assert_error(await client.post("/api/sessions", json=body, headers=team.driver.headers), 422)
        assert field in str(error["details"]), error


async def test_a_track_length_is_a_number_of_metres_from_100_m_to_100_km(
    client: httpx.AsyncClient, team: Team
) -> None:
    """true is not 1 m, "2260" is text, 1e-300 m or 50 m is a unit mix-up (a length in km), NaN is no length."""
    headers = {**team.driver.headers, "Content-Type": "application/json"}
    for value in ("true", '"2260"', "1e-300", "50", "0.5", "100001", "1e400", "NaN", "-Infinity"):
        body = f'{{"driverId": "{team.driver.driver_id}", "name": "run", "trackName": "Somewhere", "trackLengthM": {value}}}'
        error = assert_error(await client.post("/api/sessions", content=body, headers=headers), 422)
        assert [detail["field"] for detail in error["details"]] == ["trackLengthM"], (value, error)
    for length in (100, 2257.5, 100_000):
        name = f"Length {length} {team.id[:8]}"
        assert (await create(client, team.driver, trackName=name, trackLengthM=length))[
            "trackLengthM"
        ] == length


async def test_track_twins_are_refused_but_another_layout_is_not(
    client: httpx.AsyncClient, team: Team, admin: Actor
) -> None:
    body = {"name": f"Monza {team.id[:8]}", "configuration": "", "lengthM": 5793.0}
    assert (await client.post("/api/tracks", json=body, headers=team.engineer.headers)).status_code == 201
    assert_error(
        await client.post("/api/tracks", json=body, headers=team.engineer.headers), 409, "track_exists"
    )
    junior = await client.post(
        "/api/tracks",
        json={**body, "configuration": "Junior", "lengthM": 2405.0},
        headers=team.engineer.headers,
    )
    assert junior.status_code == 201, junior.text
    renamed = await client.patch(
        f"/api/tracks/{junior.json()['id']}",
        json={"configuration": "", "lengthM": 5790.0},
        headers=admin.headers,
    )
    assert_error(renamed, 409, "track_exists")
