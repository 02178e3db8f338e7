"""Sessions carry their track and car: a track named by a client is matched by name, layout and length (within
1 %) or created, in the one shared catalogue."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Actor, Team, assert_error
from tests.telemetry.conftest import as_rows, post_batches, synthetic_laps


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


async def test_a_session_on_a_track_without_a_length_keeps_the_length_it_measured(
    client: httpx.AsyncClient, team: Team
) -> None:
    name = f"Calder {team.id[:8]}"
    created = await client.post("/api/tracks", json={"name": name}, headers=team.engineer.headers)
    assert created.status_code == 201, created.text
    session = await create(client, team.driver, trackName=name, trackLengthM=2257.5)
    assert session["trackId"] == created.json()["id"] and session["trackLengthM"] == 2257.5
    # The length is the session's; the catalogue's track is changed by an admin only.
    assert session["measuredLengthM"] == 2257.5
    track = await client.get(f"/api/tracks/{created.json()['id']}", headers=team.driver.headers)
    assert track.json()["lengthM"] is None


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


def synthetic_lap_length(lap_time: float) -> float:
    """The lap length `synthetic_laps` drives: its mean speed (150 km/h; the sine averages out) for a lap."""
    return 150 / 3.6 * lap_time


async def drive(client: httpx.AsyncClient, actor: Actor, session_id: str, lap_time: float) -> None:
    """Three synthetic laps of `lap_time` s into the session, then coaching asked for lap 2 (against lap 1)."""
    assert actor.driver_id is not None
    rows = as_rows(synthetic_laps(lap_time=lap_time))
    await post_batches(client, actor.headers, actor.driver_id, session_id, rows)
    body = {"driverId": actor.driver_id, "sessionId": session_id, "telemetryData": {"lap": 2}}
    coached = await client.post("/api/ai/feedback", json=body, headers=actor.headers)
    assert coached.status_code == 201, coached.text


async def test_another_teams_sessions_and_laps_never_change_a_track_we_use(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    # Review after issue 17: a session naming a track with no length wrote its client's length onto it (and
    # ingest and coaching wrote the first lap's length and corners): team B re-measured team A's track.
    a, b = team, other_team
    name = f"Snetterton {a.id[:8]}"
    created = await client.post("/api/tracks", json={"name": name}, headers=a.engineer.headers)
    assert created.status_code == 201, created.text
    track_id = created.json()["id"]
    ours = await create(client, a.driver, trackId=track_id)
    seen_before = [
        (await client.get(f"/api/tracks/{track_id}", headers=a.driver.headers)).json(),
        (await client.get(f"/api/sessions/{ours['id']}/summary", headers=a.driver.headers)).json(),
    ]
    # B: one session naming the track with a length of its own, one on it by id; laps driven and coached in both.
    by_name = await create(client, b.driver, trackName=name.lower(), trackLengthM=5000.0)
    by_id = await create(client, b.driver, trackId=track_id)
    assert by_name["trackId"] == by_id["trackId"] == track_id  # one catalogue: the same circuit
    assert by_name["trackLengthM"] == 5000.0  # B's own measurement, shown in B's session only
    await drive(client, b.driver, by_name["id"], lap_time=30.0)
    await drive(client, b.driver, by_id["id"], lap_time=30.0)
    by_id_now = (await client.get(f"/api/sessions/{by_id['id']}/summary", headers=b.driver.headers)).json()
    assert by_id_now["trackLengthM"] == pytest.approx(synthetic_lap_length(30.0), rel=0.01)
    seen_after = [
        (await client.get(f"/api/tracks/{track_id}", headers=a.driver.headers)).json(),
        (await client.get(f"/api/sessions/{ours['id']}/summary", headers=a.driver.headers)).json(),
    ]
    assert seen_after == seen_before
    assert (seen_after[0]["lengthM"], seen_after[0]["corners"], seen_after[0]["sectorSplits"]) == (
        None,
        None,
        [],
    )
    # A drives: its session measures its own laps; lap 2 against lap 1 is aligned on A's length, not B's.
    await drive(client, a.driver, ours["id"], lap_time=20.0)
    summary = (await client.get(f"/api/sessions/{ours['id']}/summary", headers=a.driver.headers)).json()
    assert summary["trackLengthM"] == pytest.approx(synthetic_lap_length(20.0), rel=0.01)
    compared = await client.get(
        f"/api/sessions/{ours['id']}/laps/2/compare", params={"with": "1"}, headers=a.driver.headers
    )
    assert compared.status_code == 200, compared.text
    assert compared.json()["trackLength"] == pytest.approx(synthetic_lap_length(20.0), rel=0.01)
    track = (await client.get(f"/api/tracks/{track_id}", headers=a.driver.headers)).json()
    assert track == seen_before[0]


async def test_a_name_only_session_keeps_to_the_track_its_driver_drove_not_an_older_twin(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    # A name-only match took the oldest track of that name: B, adding the name first with another length,
    # caught every later session of A's relay (which names the track without a length).
    a, b = team, other_team
    name = f"Brands Hatch {a.id[:8]}"
    decoy = await client.post(
        "/api/tracks", json={"name": name, "lengthM": 1000.0}, headers=b.engineer.headers
    )
    assert decoy.status_code == 201, decoy.text
    measured = await create(client, a.driver, trackName=name, trackLengthM=3908.0)
    assert measured["trackId"] != decoy.json()["id"]
    relay = await create(client, a.driver, trackName=name)
    assert relay["trackId"] == measured["trackId"]
    assert relay["trackLengthM"] == 3908.0 and relay["measuredLengthM"] is None


async def test_a_track_named_by_id_with_another_length_or_no_such_track_is_refused(
    client: httpx.AsyncClient, team: Team
) -> None:
    created = await client.post(
        "/api/tracks",
        json={"name": f"Oulton {team.id[:8]}", "lengthM": 4307.0},
        headers=team.engineer.headers,
    )
    track_id = created.json()["id"]
    body = {"driverId": team.driver.driver_id, "name": "run", "trackId": track_id}
    other = await client.post(
        "/api/sessions", json={**body, "trackLengthM": 2692.0}, headers=team.driver.headers
    )
    assert assert_error(other, 422, "track_length_mismatch")["details"][0]["field"] == "trackLengthM"
    within = await client.post(
        "/api/sessions", json={**body, "trackLengthM": 4300.0}, headers=team.driver.headers
    )
    assert within.status_code == 201, within.text
    assert (within.json()["trackLengthM"], within.json()["measuredLengthM"]) == (4307.0, 4300.0)
    missing = await client.post(
        "/api/sessions", json={**body, "trackId": str(uuid.uuid4())}, headers=team.driver.headers
    )
    assert_error(missing, 422, "unknown_track")
    for bad in ("not-a-uuid", 7, None):
        refused = await client.post(
            "/api/sessions", json={**body, "trackId": bad, "trackName": None}, headers=team.driver.headers
        )
        if bad is None:
            assert refused.status_code == 201, refused.text  # no track at all is allowed
        else:
            assert_error(refused, 422)
    track = (await client.get(f"/api/tracks/{track_id}", headers=team.driver.headers)).json()
    assert track["lengthM"] == 4307.0
