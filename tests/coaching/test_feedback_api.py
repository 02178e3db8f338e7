"""POST /api/ai/feedback and the feedback routes, against a real server with real laps."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from pitbox.recordings import open_recording
from tests.conftest import Actor, RunningServer, Team, World, assert_error, shared_data

from .conftest import COACHED_CHANNELS, LANGLEY, Columns, RealLaps


def columns_json(columns: Columns) -> dict[str, list[float]]:
    """Columns as JSON lists."""
    return {name: values.tolist() for name, values in columns.items()}


async def new_session(client: httpx.AsyncClient, team: Team, driver: Actor | None = None) -> str:
    """A session of the team's driver, created by its manager."""
    driver = driver or team.driver
    response = await client.post(
        "/api/sessions",
        json={"driverId": driver.driver_id, "name": "Langley practice", "car": "SK Modified"},
        headers=team.manager.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def ingest(client: httpx.AsyncClient, driver: Actor, session_id: str, columns: Columns) -> None:
    """Send a recording's columns as telemetry batches, as a driver app would."""
    size = columns["t"].size
    for start in range(0, size, 1000):
        batch = {name: values[start : start + 1000].tolist() for name, values in columns.items()}
        response = await client.post(
            "/api/telemetry",
            json={
                "driverId": driver.driver_id,
                "sessionId": session_id,
                "batchId": f"b{start}",
                "columns": batch,
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
    lap, samples = max(langley.others, key=lambda pair: pair[0].lap_time)
    telemetry = {
        "columns": columns_json(samples),
        "lapNumber": lap.number,
        "reference": {"columns": columns_json(langley.best[1])},
    }
    response = await client.post(
        "/api/ai/feedback", json=feedback_body(team, session_id, telemetry), headers=team.engineer.headers
    )
    assert response.status_code == 201, response.text
    feedback = response.json()
    assert (
        feedback["source"] == "analyst"
        and feedback["status"] == "published"
        and feedback["kind"] == "analysis"
    )
    assert feedback["lap"] == lap.number and feedback["driverId"] == team.driver.driver_id
    assert feedback["items"], feedback
    first = feedback["items"][0]
    assert first["kind"] == "improvement" and first["evidence"]["corner"] == first["corner"]
    assert first["text"].startswith(first["corner"]) and 0 < first["confidence"] <= 1
    assert feedback["latencyMs"] >= 0
    listed = await client.get(f"/api/sessions/{session_id}/feedback", headers=team.driver.headers)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()] == [feedback["id"]]


async def test_feedback_on_a_stored_lap_uses_the_drivers_best_lap(
    client: httpx.AsyncClient, server: RunningServer, team: Team, langley: RealLaps
) -> None:
    recording = open_recording(shared_data(LANGLEY.format("14-46-23")))
    columns = {name: np.asarray(recording.channels[name], dtype=np.float64) for name in COACHED_CHANNELS}
    session_id = await new_session(client, team)
    await ingest(client, team.driver, session_id, columns)
    laps = (await client.get(f"/api/sessions/{session_id}/laps", headers=team.driver.headers)).json()
    valid = [lap for lap in laps if lap["valid"]]
    assert len(valid) == 2
    slower = max(valid, key=lambda lap: lap["lapTime"])
    response = await client.post(
        "/api/ai/feedback",
        json=feedback_body(team, session_id, {"lap": slower["lap"]}),
        headers=team.driver.headers,
    )
    assert response.status_code == 201, response.text
    feedback = response.json()
    assert feedback["lap"] == slower["lap"]
    assert "your best lap" in feedback["summary"]
    assert f"{slower['lapTime']:.3f} s" in feedback["summary"]

    missing = await client.post(
        "/api/ai/feedback", json=feedback_body(team, session_id, {"lap": 999}), headers=team.driver.headers
    )
    assert_error(missing, 404, "lap_not_found")


async def test_completed_laps_are_coached_in_the_background_after_ingest(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    recording = open_recording(shared_data(LANGLEY.format("14-48-39")))
    columns = {name: np.asarray(recording.channels[name], dtype=np.float64) for name in COACHED_CHANNELS}
    session_id = await new_session(client, team)
    await ingest(client, team.driver, session_id, columns)
    laps = (await client.get(f"/api/sessions/{session_id}/laps", headers=team.driver.headers)).json()
    slower = max((lap for lap in laps if lap["valid"]), key=lambda lap: lap["lapTime"])
    coaching = server.services.coaching
    assert coaching is not None
    # Ingest queued each completed lap for coaching without waiting for it; wait for the workers here.
    await coaching.idle()
    listed = (await client.get(f"/api/sessions/{session_id}/feedback", headers=team.driver.headers)).json()
    coached = {item["lap"]: item for item in listed}
    assert slower["lap"] in coached
    assert coached[slower["lap"]]["source"] == "analyst"
    assert len(listed) == len(set(coached)), "each lap is coached once"


async def test_approval_gate_holds_feedback_until_an_engineer_approves(
    client: httpx.AsyncClient, team: Team, langley: RealLaps
) -> None:
    session_id = await new_session(client, team)
    gate = await client.put(
        f"/api/sessions/{session_id}/coaching", json={"approvalRequired": True}, headers=team.engineer.headers
    )
    assert gate.status_code == 200, gate.text
    lap, samples = langley.others[0]
    telemetry = {"columns": columns_json(samples), "reference": {"columns": columns_json(langley.best[1])}}
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
        "columns": columns_json(langley.others[0][1]),
        "reference": {"columns": columns_json(langley.best[1])},
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
        ({"driverId": "D", "sessionId": "S", "telemetryData": {"speed": [1, 2]}}, "telemetryData"),
        (
            {
                "driverId": "D",
                "sessionId": "S",
                "telemetryData": {"columns": {"t": [0, 1], "lapDistPct": [0, "x"]}},
            },
            "telemetryData.columns.lapDistPct",
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
