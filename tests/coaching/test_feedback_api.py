"""POST /api/ai/feedback and the feedback routes, against a real server with real laps."""

from __future__ import annotations

import re
from typing import Any

import httpx
import numpy as np
import pytest

from pitbox.recordings import open_recording
from tests.conftest import Actor, RunningServer, Team, World, assert_error, shared_data

from .conftest import CALDER, CALDER_LAP_TIMES, LANGLEY, Columns, RealLaps, cut

#: The channels a driver app streams for coaching (canonical names).
STREAMED = ("t", "lap", "lapDistPct", "lapDist", "lapTime", "lastLapTime", "speed", "throttle", "brake")
STREAMED += ("brakePressure", "gear", "steering", "lat", "lon")
#: Those a MoTeC logger has (Sample1.ld).
CALDER_STREAMED = (
    "t",
    "lap",
    "lapDist",
    "lapTime",
    "lastLapTime",
    "speed",
    "throttle",
    "brakePressure",
    "gear",
)
CALDER_STREAMED += ("steering",)


def columns_json(columns: Columns) -> dict[str, list[float | None]]:
    """Columns as JSON lists (a missing value is null)."""
    return {
        name: [None if not np.isfinite(value) else float(value) for value in np.asarray(values, dtype=float)]
        for name, values in columns.items()
    }


async def new_session(
    client: httpx.AsyncClient, team: Team, driver: Actor | None = None, **fields: Any
) -> str:
    """A session of the team's driver, created by its manager (at Langley in an SK Modified by default)."""
    driver = driver or team.driver
    body = {
        "driverId": driver.driver_id,
        "name": "practice",
        "trackName": "Langley Speedway",
        "car": "Modified - SK",
        **fields,
    }
    response = await client.post("/api/sessions", json=body, headers=team.manager.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def ingest(client: httpx.AsyncClient, driver: Actor, session_id: str, path: str) -> None:
    """Send a recording (read by our reader: the input, not an oracle) in one batch of columns, as a relay
    agent catching up would; only the channels a driver app streams for coaching."""
    recording = open_recording(shared_data(path))
    columns = {name: recording.channels[name] for name in STREAMED if name in recording.channels}
    response = await client.post(
        "/api/telemetry",
        json={
            "driverId": driver.driver_id,
            "sessionId": session_id,
            "batchId": "all",
            "columns": columns_json(columns),
        },
        headers=driver.headers,
    )
    assert response.status_code == 201, response.text


def feedback_body(team: Team, session_id: str, telemetry: dict[str, Any]) -> dict[str, Any]:
    return {"driverId": team.driver.driver_id, "sessionId": session_id, "telemetryData": telemetry}


async def test_feedback_on_an_inline_lap_is_answered_stored_and_readable_by_the_driver(
    client: httpx.AsyncClient, team: Team, langley: RealLaps
) -> None:
    session_id = await new_session(client, team)
    slowest = max(langley.others, key=lambda lap: lap.time)
    telemetry = {
        "columns": columns_json(slowest.columns),
        "lapNumber": slowest.number,
        "reference": {"columns": columns_json(langley.best.columns)},
    }
    response = await client.post(
        "/api/ai/feedback", json=feedback_body(team, session_id, telemetry), headers=team.engineer.headers
    )
    assert response.status_code == 201, response.text
    feedback = response.json()
    assert (feedback["source"], feedback["status"], feedback["kind"]) == ("analyst", "published", "analysis")
    assert feedback["lap"] == slowest.number and feedback["driverId"] == team.driver.driver_id
    assert feedback["items"], feedback
    first = feedback["items"][0]
    assert first["kind"] == "improvement" and first["evidence"]["corner"] == first["corner"]
    assert first["text"].startswith(first["corner"]) and 0 < first["confidence"] <= 1
    assert first["cause"]["kind"] and first["range"]["from"] is not None and first["cornerNumber"] >= 1
    assert feedback["latencyMs"] >= 0
    listed = await client.get(f"/api/sessions/{session_id}/feedback", headers=team.driver.headers)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()] == [feedback["id"]]


async def test_an_inline_lap_cut_line_to_line_is_the_lap_coached_not_a_fragment_beside_it(
    client: httpx.AsyncClient, team: Team, calder: RealLaps
) -> None:
    """Sample1.ld's laps 3 and 2 as a client sends them: the logger's own channels, cut from the sample before
    MoTeC's line to the one after it. The logger notices each line a second late (its lap distance and timer
    run on), so the lap it closes inside the data began long before the first sample: not the lap sent."""
    session_id = await new_session(client, team, trackName="Calder", car="11A")
    recording = open_recording(shared_data(CALDER))
    channels = {name: np.asarray(recording.channels[name], dtype=float) for name in CALDER_STREAMED}

    def inline(number: int) -> dict[str, Any]:
        lap = calder.lap(number)
        return {"columns": columns_json(cut(channels, lap.t_start, lap.t_end)), "lapNumber": number}

    telemetry = {**inline(3), "reference": inline(2)}
    response = await client.post(
        "/api/ai/feedback", json=feedback_body(team, session_id, telemetry), headers=team.driver.headers
    )
    assert response.status_code == 201, response.text
    summary = response.json()["summary"]
    match = re.match(r"Lap 3: ([+-][\d.]+) s to the reference lap\.", summary)
    assert match, summary
    # MoTeC's own lap times: 65.18 s (lap 3) against 63.68 s (lap 2).
    assert float(match[1]) == pytest.approx(CALDER_LAP_TIMES[2] - CALDER_LAP_TIMES[1], abs=0.05)


def summary_numbers(summary: str) -> tuple[float, float, float]:
    """(lap time, delta, reference time) from "Lap N: 15.187 s, +0.09 s to your best lap (15.099 s)."."""
    match = re.match(r"Lap \d+: ([\d.]+) s, ([+-][\d.]+) s to your best lap \(([\d.]+) s\)", summary)
    assert match, summary
    return float(match[1]), float(match[2]), float(match[3])


async def test_a_lap_is_coached_against_the_best_lap_on_its_track_and_car_in_any_session(
    quiet: httpx.AsyncClient, team: Team, langley: RealLaps
) -> None:
    client = quiet  # ingest coaches every lap: on the quiet server, without speech
    first = await new_session(client, team)
    await ingest(client, team.driver, first, LANGLEY.format("14-46-23"))
    second = await new_session(client, team)
    await ingest(client, team.driver, second, LANGLEY.format("14-48-39"))
    slower = langley.lap(180)  # of the second session; the best lap (175) is in the first
    response = await client.post(
        "/api/ai/feedback", json=feedback_body(team, second, {"lap": 180}), headers=team.driver.headers
    )
    assert response.status_code == 201, response.text
    lap_time, delta, reference_time = summary_numbers(response.json()["summary"])
    assert lap_time == pytest.approx(slower.time, abs=0.001)
    assert reference_time == pytest.approx(langley.lap(175).time, abs=0.001)
    assert delta == pytest.approx(slower.time - langley.lap(175).time, abs=0.02)

    missing = await client.post(
        "/api/ai/feedback", json=feedback_body(team, second, {"lap": 999}), headers=team.driver.headers
    )
    assert_error(missing, 404, "lap_not_found")

    # SPEC.md's telemetry object names no stored lap: the session's last completed lap is coached, also when
    # the object says which lap the car is on now.
    laps = (await client.get(f"/api/sessions/{second}/laps", headers=team.driver.headers)).json()
    last = max(laps, key=lambda lap: lap["tEnd"])
    for telemetry in ({"speed": 120.5, "rpm": 7500}, {"speed": 98.0, "gear": 3, "lap": last["lap"] + 1}):
        response = await client.post(
            "/api/ai/feedback", json=feedback_body(team, second, telemetry), headers=team.driver.headers
        )
        assert response.status_code == 201, response.text
        assert response.json()["lap"] == last["lap"]
        assert f"{last['lapTime']:.3f} s" in response.json()["summary"]


async def test_a_telemetry_object_before_any_completed_lap_gets_a_note_saying_so(
    client: httpx.AsyncClient, team: Team
) -> None:
    session_id = await new_session(client, team)
    telemetry = {"speed": 120.5, "rpm": 7500, "gear": 4, "throttle": 0.75, "brake": 0.0, "steering": -0.1}
    response = await client.post(
        "/api/ai/feedback", json=feedback_body(team, session_id, telemetry), headers=team.driver.headers
    )
    assert response.status_code == 201, response.text
    feedback = response.json()
    assert feedback["items"] == [] and feedback["lap"] is None
    assert feedback["summary"] == "No lap to coach: no lap of this session is completed yet."
    listed = (await client.get(f"/api/sessions/{session_id}/feedback", headers=team.driver.headers)).json()
    assert [item["id"] for item in listed] == [feedback["id"]]


async def test_live_coaching_calls_a_new_best_a_new_best_and_only_the_best_your_best(
    quiet: httpx.AsyncClient, quiet_server: RunningServer, team: Team, langley: RealLaps
) -> None:
    client, server = quiet, quiet_server
    session_id = await new_session(client, team)
    await ingest(
        client, team.driver, session_id, LANGLEY.format("14-46-23")
    )  # laps 174 (15.187), 175 (15.099)
    later = await new_session(client, team)
    await ingest(client, team.driver, later, LANGLEY.format("14-50-46"))  # laps 184, 185: slower than 175
    coaching = server.services.coaching
    assert coaching is not None
    await coaching.live.idle()  # ingest queued each completed lap without waiting for its coaching
    # One batch held both laps: by the time they are coached each has the other to be compared with.
    first = {
        item["lap"]: item
        for item in (
            await client.get(f"/api/sessions/{session_id}/feedback", headers=team.driver.headers)
        ).json()
    }
    assert sorted(first) == [174, 175]
    faster, previous = langley.lap(175), langley.lap(174)
    assert summary_numbers(first[174]["summary"])[2] == pytest.approx(faster.time, abs=0.001)
    assert first[175]["summary"].startswith(
        f"Lap 175: {faster.time:.3f} s, a new best, {previous.time - faster.time:.2f} s faster than your previous"
        f" best lap ({previous.time:.3f} s)."
    )
    second = (await client.get(f"/api/sessions/{later}/feedback", headers=team.driver.headers)).json()
    assert sorted(item["lap"] for item in second) == [184, 185]
    for item in second:
        _, _, reference_time = summary_numbers(item["summary"])
        assert reference_time == pytest.approx(faster.time, abs=0.001)  # "your best lap" is the best one
    assert len(second) == len({item["lap"] for item in second}), "each lap is coached once"


async def test_a_reference_on_another_track_is_refused(
    quiet: httpx.AsyncClient, team: Team, langley: RealLaps, calder: RealLaps
) -> None:
    client = quiet
    oval = await new_session(client, team)
    await ingest(client, team.driver, oval, LANGLEY.format("14-46-23"))
    road = await new_session(client, team, trackName="Calder", car="11A")
    await ingest(client, team.driver, road, "motec_ld/Sample1.ld")
    cases = [
        {"lap": 2, "reference": {"sessionId": oval, "lap": 175}},  # another track id
        {"lap": 2, "reference": {"columns": columns_json(langley.best.columns)}},  # 576 m, not 2.26 km
    ]
    for telemetry in cases:
        refused = await client.post(
            "/api/ai/feedback", json=feedback_body(team, road, telemetry), headers=team.driver.headers
        )
        error = assert_error(refused, 422, "reference_other_track")
        assert error["details"][0]["field"] == "telemetryData.reference"
    # Another track id refuses even where the lengths agree: the same data filed under another layout.
    layout = await new_session(client, team, trackConfig="Test layout")
    await ingest(client, team.driver, layout, LANGLEY.format("14-48-39"))
    twin = await client.post(
        "/api/ai/feedback",
        json=feedback_body(team, layout, {"lap": 180, "reference": {"sessionId": oval, "lap": 175}}),
        headers=team.driver.headers,
    )
    assert_error(twin, 422, "reference_other_track")
    same = await client.post(
        "/api/ai/feedback",
        json=feedback_body(team, road, {"lap": 3, "reference": {"sessionId": road, "lap": 2}}),
        headers=team.driver.headers,
    )
    assert same.status_code == 201, same.text
    assert (
        "+1.51 s to lap 2 of the reference session" in same.json()["summary"]
    )  # 65.18 - 63.68, line to line


async def test_live_coaching_skips_a_reference_whose_length_says_another_track(
    quiet: httpx.AsyncClient, quiet_server: RunningServer, team: Team, calder: RealLaps, langley: RealLaps
) -> None:
    """A session that claims Langley but whose laps measure 2.26 km is never coached against Langley laps."""
    client, server = quiet, quiet_server
    oval = await new_session(client, team)
    await ingest(client, team.driver, oval, LANGLEY.format("14-46-23"))
    track_id = (await client.get(f"/api/sessions/{oval}/summary", headers=team.driver.headers)).json()[
        "trackId"
    ]
    mislabelled = await new_session(client, team, trackName=None, trackId=track_id, car="Modified - SK")
    await ingest(client, team.driver, mislabelled, "motec_ld/Sample1.ld")
    coaching = server.services.coaching
    assert coaching is not None
    await coaching.live.idle()
    feedback = (await client.get(f"/api/sessions/{mislabelled}/feedback", headers=team.driver.headers)).json()
    assert feedback, "the session's own laps are references for each other"
    calder_times = {f"({lap.time:.3f} s)" for lap in calder.laps}
    for item in feedback:
        assert any(time in item["summary"] for time in calder_times), item["summary"]
        assert f"{langley.best.time:.3f}" not in item["summary"]


async def test_approval_gate_holds_feedback_until_an_engineer_approves(
    client: httpx.AsyncClient, team: Team, langley: RealLaps
) -> None:
    session_id = await new_session(client, team)
    gate = await client.put(
        f"/api/sessions/{session_id}/coaching", json={"approvalRequired": True}, headers=team.engineer.headers
    )
    assert gate.status_code == 200, gate.text
    telemetry = {
        "columns": columns_json(langley.others[0].columns),
        "reference": {"columns": columns_json(langley.best.columns)},
    }
    created = await client.post(
        "/api/ai/feedback", json=feedback_body(team, session_id, telemetry), headers=team.driver.headers
    )
    assert created.status_code == 201, created.text
    feedback = created.json()
    assert feedback["status"] == "pending_approval"
    refused = await client.post(f"/api/feedback/{feedback['id']}/approve", headers=team.driver.headers)
    assert_error(refused, 403)
    held = await client.get(f"/api/sessions/{session_id}/feedback", headers=team.engineer.headers)
    assert [item["status"] for item in held.json()] == ["pending_approval"]
    approved = await client.post(f"/api/feedback/{feedback['id']}/approve", headers=team.engineer.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "published"
    again = await client.post(f"/api/feedback/{feedback['id']}/approve", headers=team.engineer.headers)
    assert_error(again, 409, "not_pending")


async def test_coaching_switches_are_true_or_false_not_numbers_or_words(
    client: httpx.AsyncClient, team: Team
) -> None:
    session_id = await new_session(client, team)
    url = f"/api/sessions/{session_id}/coaching"
    for field, value in (("approvalRequired", 1), ("approvalRequired", "yes"), ("cuesMuted", "off")):
        refused = await client.put(url, json={field: value}, headers=team.engineer.headers)
        assert [detail["field"] for detail in assert_error(refused, 422)["details"]] == [field], (
            field,
            value,
        )
    assert (await client.put(url, json={"cuesMuted": True}, headers=team.engineer.headers)).status_code == 200


async def test_pit_wall_message_is_spoken_and_stored(client: httpx.AsyncClient, team: Team) -> None:
    session_id = await new_session(client, team)
    response = await client.post(
        f"/api/sessions/{session_id}/pit-wall",
        json={"text": "Box this lap, box box."},
        headers=team.engineer.headers,
    )
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["kind"] == "pit_wall" and message["summary"] == "Box this lap, box box."
    assert message["audioUrl"].startswith("/api/voice/audio/")
    audio = await client.get(message["audioUrl"], headers=team.driver.headers)
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    by_driver = await client.post(
        f"/api/sessions/{session_id}/pit-wall", json={"text": "hello"}, headers=team.driver.headers
    )
    assert_error(by_driver, 403)


async def test_another_teams_user_gets_404_on_every_route_with_an_id(
    client: httpx.AsyncClient, team: Team, other_team: Team, langley: RealLaps
) -> None:
    session_id = await new_session(client, team)
    telemetry = {
        "columns": columns_json(langley.others[0].columns),
        "reference": {"columns": columns_json(langley.best.columns)},
    }
    feedback = (
        await client.post(
            "/api/ai/feedback", json=feedback_body(team, session_id, telemetry), headers=team.driver.headers
        )
    ).json()
    stranger = other_team.engineer.headers
    checks = [
        client.post("/api/ai/feedback", json=feedback_body(team, session_id, {"lap": 1}), headers=stranger),
        client.get(f"/api/sessions/{session_id}/feedback", headers=stranger),
        client.post(f"/api/feedback/{feedback['id']}/approve", headers=stranger),
        client.post(f"/api/sessions/{session_id}/pit-wall", json={"text": "hi"}, headers=stranger),
        client.put(f"/api/sessions/{session_id}/coaching", json={"approvalRequired": True}, headers=stranger),
    ]
    for request in checks:
        assert_error(await request, 404)
    # A reference in another team's session is as unknown as a random one.
    theirs = await new_session(client, other_team)
    foreign = await client.post(
        "/api/ai/feedback",
        json=feedback_body(team, session_id, {"lap": 1, "reference": {"sessionId": theirs, "lap": 1}}),
        headers=team.driver.headers,
    )
    assert_error(foreign, 404)


async def test_an_api_key_without_ai_write_may_read_but_not_ask(
    client: httpx.AsyncClient, world: World, team: Team
) -> None:
    session_id = await new_session(client, team)
    key = await world.api_key(driver_id=team.driver.driver_id, scopes=["ai:read", "telemetry:write"])
    headers = {"Authorization": f"Bearer {key}"}
    denied = await client.post(
        "/api/ai/feedback", json=feedback_body(team, session_id, {"lap": 1}), headers=headers
    )
    assert_error(denied, 403, "missing_scope")
    listed = await client.get(f"/api/sessions/{session_id}/feedback", headers=headers)
    assert listed.status_code == 200 and listed.json() == [], listed.text  # readable, and nothing was asked


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sessionId": "S", "telemetryData": {"lap": 1}}, "driverId"),
        ({"driverId": "D", "sessionId": "S"}, "telemetryData"),
        ({"driverId": "D", "sessionId": "S", "telemetryData": {"lap": "three"}}, "telemetryData.lap"),
        ({"driverId": "D", "sessionId": "S", "telemetryData": {"lap": 2.5}}, "telemetryData.lap"),
        ({"driverId": "D", "sessionId": "S", "telemetryData": [120.5, 7500]}, "telemetryData"),
        (
            {
                "driverId": "D",
                "sessionId": "S",
                "telemetryData": {"columns": {"t": [0, 1], "lapDistPct": [0, "x"]}},
            },
            "telemetryData.columns.lapDistPct",
        ),
        (
            {"driverId": "D", "sessionId": "S", "telemetryData": {"columns": {"t": [0, 1], "rpm": [1, 2]}}},
            "telemetryData",
        ),
        (
            {
                "driverId": "D",
                "sessionId": "S",
                "telemetryData": {"lap": 1, "reference": {"sessionId": "nope", "lap": 1}},
            },
            "telemetryData.reference.sessionId",
        ),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, team: Team, body: dict[str, Any], field: str
) -> None:
    session_id = await new_session(client, team)
    filled = {
        key: (team.driver.driver_id if value == "D" else session_id if value == "S" else value)
        for key, value in body.items()
    }
    response = await client.post("/api/ai/feedback", json=filled, headers=team.driver.headers)
    error = assert_error(response, 422)
    assert field in [detail["field"] for detail in error["details"]], error


LAP = '"t": [0, 1, 2], "speed": [100, 101, 102]'


@pytest.mark.parametrize(
    ("telemetry", "field"),
    [
        ('{"columns": {"t": [0, 1, 2], "speed": [100, 1e400, 102]}}', "telemetryData.columns.speed[1]"),
        ('{"columns": {"t": [0, 1, 2], "speed": [100, NaN, 102]}}', "telemetryData.columns.speed[1]"),
        ('{"columns": {"t": [0, Infinity, 2], "speed": [100, 101, 102]}}', "telemetryData.columns.t[1]"),
        (
            '{"samples": [{"t": 0, "speed": 1}, {"t": 1, "speed": -Infinity}]}',
            "telemetryData.samples[1].speed",
        ),
        (
            '{"columns": {"t": [0, 1, 2], "speed": [100, 1' + "0" * 400 + ", 102]}}",
            "telemetryData.columns.speed[1]",
        ),
        ('{"columns": {"t": [0, 1, 2], "speed": [100, true, 102]}}', "telemetryData.columns.speed"),
        ('{"columns": {"t": [0, 1, 2], "speed": [100, "101", 102]}}', "telemetryData.columns.speed"),
        ('{"samples": [{"t": 0, "speed": 1}, {"t": false, "speed": 2}]}', "telemetryData.samples.t"),
        ('{"columns": {' + LAP + '}, "lapTime": Infinity}', "telemetryData.lapTime"),
        ('{"columns": {' + LAP + '}, "lapTime": true}', "telemetryData.lapTime"),
        ('{"columns": {' + LAP + '}, "lapTime": -65.2}', "telemetryData.lapTime"),
        ('{"columns": {' + LAP + '}, "lapNumber": true}', "telemetryData.lapNumber"),
        ('{"columns": {' + LAP + '}, "lapNumber": 1e12}', "telemetryData.lapNumber"),
        ('{"columns": {' + LAP + '}, "valid": "no"}', "telemetryData.valid"),
        (
            '{"columns": {' + LAP + '}, "reference": {"columns": {"t": [0, NaN], "speed": [1, 2]}}}',
            "telemetryData.reference.columns.t[1]",
        ),
        ('{"lap": 1, "reference": {"sessionId": "S", "lap": true}}', "telemetryData.reference.lap"),
        ('{"speed": NaN, "rpm": 7500}', "telemetryData.speed"),
        ('{"lap": 1e400}', "telemetryData.lap"),
    ],
)
async def test_lap_values_that_are_not_finite_numbers_are_a_422_naming_the_field(
    client: httpx.AsyncClient, team: Team, telemetry: str, field: str
) -> None:
    """JSON as Python reads it takes NaN, Infinity and 1e400, and true is 1 to float(): none is a number of a
    lap. Sent raw: an encoder would refuse most of these."""
    session_id = await new_session(client, team)
    telemetry = telemetry.replace('"S"', f'"{session_id}"')
    body = f'{{"driverId": "{team.driver.driver_id}", "sessionId": "{session_id}", "telemetryData": {telemetry}}}'
    headers = {**team.driver.headers, "Content-Type": "application/json"}
    response = await client.post("/api/ai/feedback", content=body, headers=headers)
    error = assert_error(response, 422)
    assert field in [detail["field"] for detail in error["details"]], error
    assert len(error["message"]) < 300, error
    listed = await client.get(f"/api/sessions/{session_id}/feedback", headers=team.driver.headers)
    assert listed.json() == [], "nothing is stored"
