"""In-lap cues against a real server: a synthetic session streamed faster than real time, every trigger judged
in data time, every expected number computed in conftest.py from how the laps were built."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection

from tests.conftest import RunningServer, Team, World, assert_error
from tests.realtime.socket_client import next_frame, signed_in, subscribe

from .conftest import TOP_KMH, LapPlan, Stream, brake_point, session_body, stream, time_lost

LEAD_S = 3.0  # CUE_LEAD_S's default
TURN_2 = 1  # index of the corner braked early (the analyst's "Turn 2")
EARLY_M = 30.0
#: One 60 Hz sample at top speed: how far past its trigger the sample that fires a cue may lie.
ONE_SAMPLE_M = TOP_KMH / 3.6 / 60.0


class LiveDriver:
    """A driver app on one socket: sends telemetry frames (each waits for its ack) and keeps every message of
    its subscriptions."""

    def __init__(self, ws: ClientConnection, driver_id: str, session_id: str) -> None:
        self.ws, self.driver_id, self.session_id = ws, driver_id, session_id
        self.messages: list[dict[str, Any]] = []
        self.sent = 0

    async def drive(self, data: Stream, t_to: float, t_from: float = -1.0, batch_s: float = 0.5) -> None:
        """Send the samples from `t_from` to `t_to` (session time) in batches of `batch_s` of data."""
        start = t_from
        while start < t_to:
            end = min(start + batch_s, t_to)
            columns = data.until(end, start)
            start = end
            if not columns["t"]:
                continue
            self.sent += 1
            key = f"b{self.sent}"
            body = {
                "driverId": self.driver_id,
                "sessionId": self.session_id,
                "batchId": key,
                "columns": columns,
            }
            await self.ws.send(orjson.dumps({"type": "telemetry", "id": key, **body}).decode())
            while True:
                frame = await next_frame(self.ws)
                if frame["type"] == "ack" and frame["id"] == key:
                    break
                assert frame["type"] == "message", frame
                self.messages.append(frame["data"])

    async def wait_for(self, kind: str, **match: Any) -> dict[str, Any]:
        """The first message of this type (whose fields match), reading more frames until it comes."""
        seen = 0
        while True:
            for message in self.messages[seen:]:
                if message.get("type") == kind and all(message.get(k) == v for k, v in match.items()):
                    return message
            seen = len(self.messages)
            frame = await next_frame(self.ws)
            assert frame["type"] == "message", frame
            self.messages.append(frame["data"])

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Every message of this type so far."""
        return [message for message in self.messages if message.get("type") == kind]


async def feedback_of_lap(driver: LiveDriver, lap: int) -> dict[str, Any]:
    """The live coaching of `lap`, as the ai channel publishes it."""
    while True:
        message = await driver.wait_for("coaching")
        driver.messages.remove(message)
        if message["feedback"]["lap"] == lap:
            driver.messages.append(message)
            return dict(message["feedback"])


async def streamed_session(
    server: RunningServer, client: httpx.AsyncClient, team: Team, laps: list[LapPlan]
) -> tuple[LiveDriver, Stream, dict[str, Any]]:
    """A session streamed over the WebSocket ingest: laps 1 and 2, the coaching of lap 2, then (once its cues
    are ready, as they are within a second or two at real pace) the rest; returns the driver's socket, the
    samples and lap 2's feedback."""
    driver_id = str(team.driver.driver_id)
    created = await client.post("/api/sessions", json=session_body(driver_id), headers=team.driver.headers)
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    ws = await signed_in(server, team.driver.token)
    assert (await subscribe(ws, f"ai:{driver_id}"))["type"] == "subscribed"
    driver = LiveDriver(ws, driver_id, session_id)
    data = stream(laps)
    lap_3 = data.line_times[2]
    await driver.drive(data, lap_3 + 0.5)  # the line is behind the car: lap 2 is complete and coached
    feedback = await feedback_of_lap(driver, 2)
    if any(item["kind"] == "improvement" for item in feedback["items"]):
        await driver.wait_for("cue_plan")  # its cues armed, their audio made
    await driver.drive(data, data.line_times[-1] + 1.0, t_from=lap_3 + 0.5)
    return driver, data, feedback


@pytest.fixture(scope="module")
async def braked_early(server: RunningServer) -> tuple[LiveDriver, Stream, dict[str, Any], Team]:
    """Lap 2 brakes 30 m early for Turn 2; lap 3 brakes where lap 1 did (the reference): streamed once."""
    team = await World(server.services).team()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        laps = [LapPlan(), LapPlan(early={TURN_2: EARLY_M}), LapPlan()]
        driver, data, feedback = await streamed_session(server, client, team, laps)
    await driver.wait_for("cue_efficacy")
    return driver, data, feedback, team


async def test_a_lap_braking_early_gets_one_cue_before_that_corner_on_the_next_lap_with_its_audio_ready(
    braked_early: tuple[LiveDriver, Stream, dict[str, Any], Team], client: httpx.AsyncClient
) -> None:
    driver, data, feedback, team = braked_early
    (item,) = [item for item in feedback["items"] if item["kind"] == "improvement"]
    assert item["cause"]["kind"] == "brake_point" and item["corner"] == "Turn 2"
    fired = driver.of_type("cue")
    assert len(fired) == 1, fired
    cue = fired[0]["cue"]
    assert (cue["corner"], cue["lap"], cue["state"]) == ("Turn 2", 3, "fired")
    assert cue["text"] == "Turn 2: brake 30 metres later"
    # Fired on lap 3, in data time, where the sample it fired at was.
    assert data.line_times[2] < cue["firedT"] < data.line_times[3]
    where = data.position_at(cue["firedT"])
    assert where == pytest.approx(cue["firedDistance"], abs=0.5)
    # Before the braking point it prepares for (lap 2's, the earlier) by at least the lead distance: the speed
    # there (top speed, by construction) times CUE_LEAD_S, give or take the one sample past the trigger.
    lead_m = TOP_KMH / 3.6 * LEAD_S
    assert brake_point(TURN_2, EARLY_M) - where >= lead_m - ONE_SAMPLE_M - 2.0  # 2 m: the analyst's grid
    assert brake_point(TURN_2, EARLY_M) - where < lead_m + 20.0  # and not long before
    # The audio was ready before the trigger, and can be fetched by the driver's app.
    assert cue["audioUrl"] and cue["audioReadyAt"] is not None and cue["audioReadyAt"] <= cue["firedAt"]
    audio = await client.get(cue["audioUrl"], headers=team.driver.headers)
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    assert 0 < cue["audioDurationS"] < 3.0
    listed = (
        await client.get(f"/api/sessions/{driver.session_id}/cues", headers=team.engineer.headers)
    ).json()
    assert [c["id"] for c in listed] == [cue["id"]] and listed[0]["state"] == "fired"
    assert listed[0]["feedbackId"] == feedback["id"] and listed[0]["coachedLap"] == 2


async def test_a_cue_followed_by_braking_at_the_reference_point_records_the_gain_and_the_moved_brake_point(
    braked_early: tuple[LiveDriver, Stream, dict[str, Any], Team], client: httpx.AsyncClient
) -> None:
    driver, _, _, team = braked_early
    cue = driver.of_type("cue_efficacy")[0]["cue"]
    efficacy = cue["efficacy"]
    assert (efficacy["lap"], efficacy["coachedLap"], efficacy["verdict"]) == (3, 2, "helped")
    early, clean = LapPlan(early={TURN_2: EARLY_M}), LapPlan()
    start, end = efficacy["range"]["from"], efficacy["range"]["to"]
    before, after = time_lost(early, clean, start, end), time_lost(clean, clean, start, end)
    assert efficacy["timeLost"]["before"] == pytest.approx(before, abs=0.02)
    assert efficacy["timeLost"]["after"] == pytest.approx(after, abs=0.02)
    assert efficacy["timeLost"]["gain"] == pytest.approx(before - after, abs=0.03)
    moved = efficacy["cause"]
    assert moved["kind"] == "brake_point" and moved["unit"] == "m"
    assert moved["before"] == pytest.approx(brake_point(TURN_2, EARLY_M), abs=10.0)
    assert moved["after"] == pytest.approx(brake_point(TURN_2), abs=10.0)
    assert moved["reference"] == pytest.approx(brake_point(TURN_2), abs=10.0)
    assert moved["moved"] == pytest.approx(EARLY_M, abs=10.0)
    assert moved["towardReference"] is True and moved["gone"] is True
    listed = (await client.get(f"/api/sessions/{driver.session_id}/cues", headers=team.driver.headers)).json()
    assert listed[0]["efficacy"] == efficacy


async def posted(
    client: httpx.AsyncClient, team: Team, session_id: str, data: Stream, t_to: float, t_from: float = -1.0
) -> None:
    """POST the samples from `t_from` to `t_to` in batches of 10 s of data (a relay catching up)."""
    start = t_from
    while start < t_to:
        end = min(start + 10.0, t_to)
        columns = data.until(end, start)
        if columns["t"]:
            body = {
                "driverId": team.driver.driver_id,
                "sessionId": session_id,
                "batchId": f"{start:.3f}",
                "columns": columns,
            }
            response = await client.post("/api/telemetry", json=body, headers=team.driver.headers)
            assert response.status_code == 201, response.text
        start = end


async def settled(server: RunningServer) -> None:
    """Every lap coached and every cue's background step done (audio, claims, efficacy)."""
    assert server.services.coaching is not None and server.services.cues is not None
    await server.services.coaching.live.idle()
    await server.services.cues.idle()


async def quiet_session(client: httpx.AsyncClient, team: Team, **fields: Any) -> str:
    created = await client.post(
        "/api/sessions", json=session_body(str(team.driver.driver_id), **fields), headers=team.driver.headers
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def cues_of(client: httpx.AsyncClient, team: Team, session_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/sessions/{session_id}/cues", headers=team.engineer.headers)
    assert response.status_code == 200, response.text
    cues: list[dict[str, Any]] = response.json()
    return cues


async def test_no_cue_is_planned_or_said_on_lap_3_when_lap_2_was_clean(
    quiet: httpx.AsyncClient, quiet_cues_server: RunningServer, team: Team
) -> None:
    session_id = await quiet_session(quiet, team)
    ws = await signed_in(quiet_cues_server, team.engineer.token)
    assert (await subscribe(ws, f"ai:{team.driver.driver_id}"))["type"] == "subscribed"
    data = stream([LapPlan(), LapPlan(), LapPlan()])
    await posted(quiet, team, session_id, data, data.line_times[2] + 0.5)
    await settled(quiet_cues_server)
    assert await cues_of(quiet, team, session_id) == []
    await posted(quiet, team, session_id, data, data.line_times[-1] + 1.0, t_from=data.line_times[2] + 0.5)
    await settled(quiet_cues_server)
    assert await cues_of(quiet, team, session_id) == []
    # What the driver's app heard until lap 3's coaching: coaching, and never a cue.
    heard = []
    while not heard or heard[-1].get("feedback", {}).get("lap") != 3:
        frame = await next_frame(ws)
        if frame["type"] == "message":
            heard.append(frame["data"])
    assert {message["type"] for message in heard} == {"coaching"}


@pytest.mark.parametrize(
    ("lap_3", "switch", "state", "reason"),
    [
        (LapPlan(yellow=(600.0, 800.0)), None, "suppressed", "yellow_flag"),
        (LapPlan(pit=(0.0, 150.0)), None, "suppressed", "in_pit"),
        (LapPlan(), {"cuesMuted": True}, "muted", "muted"),
    ],
    ids=["yellow flag at the trigger", "out of the pit lane", "muted by the pit wall"],
)
async def test_a_cue_is_not_said_when_the_driver_is_off_pace_or_the_pit_wall_muted_it(
    quiet: httpx.AsyncClient,
    quiet_cues_server: RunningServer,
    team: Team,
    lap_3: LapPlan,
    switch: dict[str, Any] | None,
    state: str,
    reason: str,
) -> None:
    session_id = await quiet_session(quiet, team)
    data = stream([LapPlan(), LapPlan(early={TURN_2: EARLY_M}), lap_3])
    await posted(quiet, team, session_id, data, data.line_times[2] + 0.5)
    await settled(quiet_cues_server)
    (planned,) = await cues_of(quiet, team, session_id)
    assert (planned["state"], planned["corner"], planned["audioUrl"]) == ("armed", "Turn 2", None)
    if switch is not None:
        answer = await quiet.put(
            f"/api/sessions/{session_id}/coaching", json=switch, headers=team.engineer.headers
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"sessionId": session_id, "approvalRequired": False, **switch}
    await posted(quiet, team, session_id, data, data.line_times[-1] + 1.0, t_from=data.line_times[2] + 0.5)
    await settled(quiet_cues_server)
    (cue,) = await cues_of(quiet, team, session_id)
    assert (cue["state"], cue["reason"], cue["firedAt"]) == (state, reason, None)
    assert data.line_times[2] < cue["firedT"] < data.line_times[3]  # passed where it would have been said
    assert cue["efficacy"] is None


async def test_cues_of_a_feedback_pending_approval_wait_and_are_said_once_approved(
    quiet: httpx.AsyncClient, quiet_cues_server: RunningServer, team: Team
) -> None:
    session_id = await quiet_session(quiet, team)
    gate = await quiet.put(
        f"/api/sessions/{session_id}/coaching", json={"approvalRequired": True}, headers=team.engineer.headers
    )
    assert gate.json() == {"sessionId": session_id, "approvalRequired": True, "cuesMuted": False}
    data = stream([LapPlan(), LapPlan(early={TURN_2: EARLY_M}), LapPlan()])
    await posted(quiet, team, session_id, data, data.line_times[2] + 0.5)
    await settled(quiet_cues_server)
    (waiting,) = await cues_of(quiet, team, session_id)
    assert waiting["state"] == "pending_approval"
    # Lap 3 up to a few hundred metres before the trigger: nothing is said while the feedback waits.
    before_trigger = data.line_times[2] + 8.0
    await posted(quiet, team, session_id, data, before_trigger, t_from=data.line_times[2] + 0.5)
    await settled(quiet_cues_server)
    assert (await cues_of(quiet, team, session_id))[0]["state"] == "pending_approval"
    approved = await quiet.post(
        f"/api/feedback/{waiting['feedbackId']}/approve", headers=team.engineer.headers
    )
    assert approved.status_code == 200, approved.text
    await settled(quiet_cues_server)
    assert (await cues_of(quiet, team, session_id))[0]["state"] == "armed"
    await posted(quiet, team, session_id, data, data.line_times[-1] + 1.0, t_from=before_trigger)
    await settled(quiet_cues_server)
    (cue,) = await cues_of(quiet, team, session_id)
    assert (cue["state"], cue["lap"]) == ("fired", 3)
    assert data.line_times[2] < cue["firedT"] < data.line_times[3]
    assert cue["efficacy"]["verdict"] == "helped"


async def test_a_cue_approved_after_the_driver_fixed_its_cause_is_silenced(
    quiet: httpx.AsyncClient, quiet_cues_server: RunningServer, team: Team
) -> None:
    session_id = await quiet_session(quiet, team)
    await quiet.put(
        f"/api/sessions/{session_id}/coaching", json={"approvalRequired": True}, headers=team.engineer.headers
    )
    data = stream([LapPlan(), LapPlan(early={TURN_2: EARLY_M}), LapPlan(), LapPlan()])
    # Lap 3 brakes where the reference does: by the time lap 2's feedback is approved (on lap 4), it is fixed.
    await posted(quiet, team, session_id, data, data.line_times[3] + 0.5)
    await settled(quiet_cues_server)
    (waiting,) = await cues_of(quiet, team, session_id)
    approved = await quiet.post(
        f"/api/feedback/{waiting['feedbackId']}/approve", headers=team.engineer.headers
    )
    assert approved.status_code == 200, approved.text
    await settled(quiet_cues_server)
    (cue,) = await cues_of(quiet, team, session_id)
    assert (cue["state"], cue["reason"]) == ("silenced", "cause_gone")
    await posted(quiet, team, session_id, data, data.line_times[-1] + 1.0, t_from=data.line_times[3] + 0.5)
    await settled(quiet_cues_server)
    assert (await cues_of(quiet, team, session_id))[0]["state"] == "silenced"


async def test_feedback_asked_for_the_latest_lap_plans_cues_and_for_an_older_lap_does_not(
    quiet: httpx.AsyncClient, quiet_cues_server: RunningServer, team: Team
) -> None:
    session_id = await quiet_session(quiet, team)
    data = stream([LapPlan(), LapPlan(early={TURN_2: EARLY_M}), LapPlan()])
    await posted(quiet, team, session_id, data, data.line_times[2] + 0.5)
    await settled(quiet_cues_server)
    (live,) = await cues_of(quiet, team, session_id)

    async def ask(lap: int) -> dict[str, Any]:
        body = {"driverId": team.driver.driver_id, "sessionId": session_id, "telemetryData": {"lap": lap}}
        response = await quiet.post("/api/ai/feedback", json=body, headers=team.engineer.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    older = await ask(1)
    await settled(quiet_cues_server)
    assert [cue["id"] for cue in await cues_of(quiet, team, session_id)] == [live["id"]]
    assert older["lap"] == 1
    latest = await ask(2)
    await settled(quiet_cues_server)
    cues = await cues_of(quiet, team, session_id)
    assert [(cue["feedbackId"], cue["state"], cue["reason"]) for cue in cues] == [
        (live["feedbackId"], "expired", "replaced"),
        (latest["id"], "armed", None),
    ]
    assert cues[1]["text"] == live["text"] and cues[1]["triggerDistance"] == live["triggerDistance"]


async def test_the_cue_routes_refuse_bad_input_other_teams_and_the_wrong_roles(
    quiet: httpx.AsyncClient, team: Team, other_team: Team, world: World
) -> None:
    session_id = await quiet_session(quiet, team)
    route = f"/api/sessions/{session_id}/cues"
    assert (await quiet.get(route, headers=team.driver.headers)).json() == []
    for query in ("limit=0", "limit=1001", "limit=x"):
        error = assert_error(await quiet.get(f"{route}?{query}", headers=team.driver.headers), 422)
        assert error["details"][0]["field"] == "query.limit", error
    assert_error(await quiet.get("/api/sessions/not-a-uuid/cues", headers=team.driver.headers), 422)
    for stranger in (other_team.manager, other_team.engineer, other_team.driver):
        assert_error(await quiet.get(route, headers=stranger.headers), 404)
    assert_error(await quiet.get(f"/api/sessions/{uuid.uuid4()}/cues", headers=team.driver.headers), 404)
    assert_error(await quiet.get(route), 401)
    no_ai = await world.api_key(driver_id=team.driver.driver_id, scopes=["telemetry:read"])
    assert_error(await quiet.get(route, headers={"Authorization": f"Bearer {no_ai}"}), 403, "missing_scope")
    reader = await world.api_key(driver_id=team.driver.driver_id, scopes=["ai:read"])
    assert (await quiet.get(route, headers={"Authorization": f"Bearer {reader}"})).status_code == 200

    switch = f"/api/sessions/{session_id}/coaching"
    for body in ({}, {"cuesMuted": "sometimes"}, {"cuesMuted": None}, {"cuesMuted": True, "volume": 3}):
        assert_error(await quiet.put(switch, json=body, headers=team.engineer.headers), 422)
    assert_error(await quiet.put(switch, json={"cuesMuted": True}, headers=team.driver.headers), 403)
    assert_error(await quiet.put(switch, json={"cuesMuted": True}, headers=other_team.engineer.headers), 404)
    muted = await quiet.put(switch, json={"cuesMuted": True}, headers=team.manager.headers)
    assert muted.json() == {"sessionId": session_id, "approvalRequired": False, "cuesMuted": True}
    unmuted = await quiet.put(switch, json={"cuesMuted": False}, headers=team.engineer.headers)
    assert unmuted.json()["cuesMuted"] is False
