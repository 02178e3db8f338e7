"""One table walks every route that names another team's object, for every kind of intruder.

Another team's manager, engineer and driver, another driver's API key holding every scope, and a team-mate
driver (for the driver's own data) must all get 404 — ids cannot be probed — and nothing may change.
The table is checked against the OpenAPI schema, so a new route with an id cannot be forgotten.

A second table walks the writes that link two objects (issue 17): an intruder links its own team, driver or
session to the victim's user, driver, session or track. Each is refused (a member add becomes an invitation the
victim never answered), and nothing of the victim's changes or becomes visible.
"""

from __future__ import annotations

import base64
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import Actor, Team, World
from tests.telemetry.conftest import as_rows, post_batches, synthetic_laps

# Routes whose id names shared things, not a team's: tracks are one catalogue every team reads; only admins
# change them (LINK_TABLE checks that intruders cannot).
NOT_TEAM_SCOPED = {"/api/tracks/{track_id}"}


@dataclass
class Victim:
    team: Team
    driver_id: str
    session_id: str
    frame_id: str
    feedback_id: str
    key_id: str
    invitation_id: str
    clip_key: str
    track_id: str
    track_name: str


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


async def _victim(client: httpx.AsyncClient, world: World, team: Team) -> Victim:
    h = team.engineer.headers
    driver = str(team.driver.driver_id)
    # A track with no length or corners yet, which the victim's session is on: whatever another team's session
    # measured and wrote onto it would show in the victim's track and session.
    track_name = f"Victim {uuid.uuid4()}"
    track = await client.post("/api/tracks", json={"name": track_name}, headers=h)
    assert track.status_code == 201, track.text
    session = (
        await client.post(
            "/api/sessions",
            json={"driverId": driver, "name": "Victim", "trackId": track.json()["id"]},
            headers=h,
        )
    ).json()
    await post_batches(client, h, driver, session["id"], as_rows(synthetic_laps(laps=2)))
    frame = await client.post(
        "/api/video",
        json={
            "driverId": driver,
            "sessionId": session["id"],
            "frameData": _png(),
            "timestamp": datetime.now(UTC).isoformat(),
        },
        headers=h,
    )
    gate = await client.put(
        f"/api/sessions/{session['id']}/coaching", json={"approvalRequired": True}, headers=h
    )
    assert gate.status_code == 200, gate.text
    feedback = await client.post(
        "/api/ai/feedback",
        json={"driverId": driver, "sessionId": session["id"], "telemetryData": {"lap": 1}},
        headers=h,
    )
    assert feedback.status_code in (200, 201), feedback.text
    key = await world.services.keys.create_key(None, scopes=["telemetry:write"], driver_id=_uuid(driver))
    invited = await client.post(  # an id that is no user is invited like a user of another team would be
        f"/api/teams/{team.id}/members",
        json={"userId": str(uuid.uuid4()), "role": "engineer"},
        headers=team.manager.headers,
    )
    assert invited.status_code == 202, invited.text
    radio = await client.post(
        f"/api/sessions/{session['id']}/pit-wall", json={"text": "Box, box."}, headers=h
    )
    assert radio.status_code == 201, radio.text
    return Victim(
        team,
        driver,
        session["id"],
        frame.json()["id"],
        feedback.json()["id"],
        str(key["id"]),
        invited.json()["id"],
        radio.json()["audioUrl"].rpartition("/")[2],
        track.json()["id"],
        track_name,
    )


def _uuid(value: str) -> Any:
    return uuid.UUID(value)


# (method, path template, query, body template): "{...}" in a body value is filled in like the path.
TABLE: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("GET", "/api/teams/{team_id}", "", None),
    ("PATCH", "/api/teams/{team_id}", "", {"name": "Hijacked"}),
    ("DELETE", "/api/teams/{team_id}", "", None),
    ("GET", "/api/teams/{team_id}/members", "", None),
    ("POST", "/api/teams/{team_id}/members", "", {"userId": "{intruder_id}", "role": "manager"}),
    ("DELETE", "/api/teams/{team_id}/members/{user_id}", "", None),
    ("POST", "/api/teams/{team_id}/drivers", "", {"driverId": "{driver_id}"}),
    ("DELETE", "/api/teams/{team_id}/drivers/{driver_id}", "", None),
    ("GET", "/api/drivers/{driver_id}", "", None),
    ("PATCH", "/api/drivers/{driver_id}", "", {"name": "Hijacked"}),
    ("DELETE", "/api/drivers/{driver_id}", "", None),
    ("DELETE", "/api/keys/{key_id}", "", None),
    ("GET", "/api/sessions/{driver_id}", "", None),
    ("POST", "/api/sessions", "", {"driverId": "{driver_id}", "name": "Intruder"}),
    ("GET", "/api/sessions/{session_id}/summary", "", None),
    ("POST", "/api/sessions/{session_id}/end", "", None),
    ("GET", "/api/sessions/{session_id}/telemetry", "", None),
    ("GET", "/api/sessions/{session_id}/telemetry", "format=csv", None),
    ("GET", "/api/sessions/{session_id}/laps", "", None),
    ("GET", "/api/sessions/{session_id}/laps/{lap}/compare", "with=2", None),
    ("GET", "/api/laps/best", "driverId={driver_id}", None),
    (
        "POST",
        "/api/telemetry",
        "",
        {"driverId": "{driver_id}", "sessionId": "{session_id}", "data": {"t": 999.0}},
    ),
    ("GET", "/api/video/{frame_id}", "", None),
    ("GET", "/api/sessions/{session_id}/video", "", None),
    ("GET", "/api/sessions/{session_id}/video/nearest", "sessionTime=5", None),
    (
        "POST",
        "/api/video",
        "",
        {"driverId": "{driver_id}", "sessionId": "{session_id}", "frameData": "{png}", "timestamp": "{now}"},
    ),
    ("GET", "/api/sessions/{session_id}/feedback", "", None),
    (
        "POST",
        "/api/ai/feedback",
        "",
        {"driverId": "{driver_id}", "sessionId": "{session_id}", "telemetryData": {"lap": 1}},
    ),
    ("POST", "/api/feedback/{feedback_id}/approve", "", None),
    ("POST", "/api/sessions/{session_id}/pit-wall", "", {"text": "Box this lap"}),
    ("PUT", "/api/sessions/{session_id}/coaching", "", {"approvalRequired": False}),
    ("PUT", "/api/sessions/{session_id}/coaching", "", {"cuesMuted": True}),
    ("GET", "/api/sessions/{session_id}/cues", "", None),
    ("GET", "/api/teams/{team_id}/invitations", "", None),
    ("DELETE", "/api/teams/{team_id}/invitations/{invitation_id}", "", None),
    ("POST", "/api/me/invitations/{invitation_id}/accept", "", None),
    ("POST", "/api/me/invitations/{invitation_id}/decline", "", None),
    ("GET", "/api/voice/audio/{key}", "", None),
]


def _filled(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    return value


def _cases(v: Victim, intruder_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, URL, body) for every route of the table, naming the victim's objects."""
    ids = {
        "team_id": v.team.id,
        "driver_id": v.driver_id,
        "session_id": v.session_id,
        "frame_id": v.frame_id,
        "feedback_id": v.feedback_id,
        "key_id": v.key_id,
        "invitation_id": v.invitation_id,
        "key": v.clip_key,
        "user_id": v.team.engineer.id,
        "lap": "1",
        "intruder_id": intruder_id,
        "png": _png(),
        "now": datetime.now(UTC).isoformat(),
    }
    return [
        (method, _filled(path, ids) + (f"?{_filled(query, ids)}" if query else ""), _filled(body, ids))
        for method, path, query, body in TABLE
    ]


async def _snapshot(client: httpx.AsyncClient, admin: Actor, v: Victim) -> list[Any]:
    h = admin.headers
    paths = [
        f"/api/teams/{v.team.id}",
        f"/api/drivers/{v.driver_id}",
        f"/api/sessions/{v.driver_id}",
        f"/api/sessions/{v.session_id}/summary",
        f"/api/sessions/{v.session_id}/laps",
        f"/api/sessions/{v.session_id}/feedback",
        f"/api/sessions/{v.session_id}/video",
        f"/api/sessions/{v.session_id}/cues",
    ]
    snapshot = [(await client.get(p, headers=h)).json() for p in paths]
    keys = (await client.get("/api/keys", headers=h)).json()
    snapshot.append(sorted((k["id"], k["revokedAt"]) for k in keys))
    snapshot.append((await client.get(f"/api/teams/{v.team.id}/invitations", headers=h)).json())
    snapshot.append((await client.get(f"/api/tracks/{v.track_id}", headers=h)).json())
    snapshot.append(
        [
            (await client.get(f"/api/drivers/{d.driver_id}", headers=h)).json()
            for d in (v.team.driver, v.team.driver2)
        ]
    )
    return snapshot


def test_the_table_covers_every_route_that_takes_an_id(server: Any) -> None:
    from pitbox.app import create_app

    paths = create_app(server.settings).openapi()["paths"]
    with_ids = {
        (method.upper(), path)
        for path, operations in paths.items()
        if "{" in path and path not in NOT_TEAM_SCOPED
        for method in operations
    }
    missing = with_ids - {(method, path) for method, path, _, _ in TABLE}
    assert not missing, f"routes with ids missing from the authorization table: {sorted(missing)}"


@pytest.mark.parametrize(
    "intruder_kind",
    [
        "other team manager",
        "other team engineer",
        "other team driver",
        "other driver's key",
        "team-mate driver",
    ],
)
async def test_intruders_get_404_everywhere_and_change_nothing(
    client: httpx.AsyncClient, world: World, admin: Actor, team: Team, other_team: Team, intruder_kind: str
) -> None:
    victim = await _victim(client, world, team)
    if intruder_kind == "other driver's key":
        key = await world.api_key(
            driver_id=other_team.driver.driver_id,
            scopes=[
                "telemetry:write",
                "telemetry:read",
                "video:write",
                "video:read",
                "sessions:write",
                "sessions:read",
                "ai:read",
                "ai:write",
                "voice:synthesize",
            ],
        )
        headers, intruder_id = {"X-API-Key": key}, other_team.driver.id
    else:
        intruder = {
            "other team manager": other_team.manager,
            "other team engineer": other_team.engineer,
            "other team driver": other_team.driver,
            "team-mate driver": team.driver2,
        }[intruder_kind]
        headers, intruder_id = intruder.headers, intruder.id
    before = await _snapshot(client, admin, victim)
    wrong = []
    for method, path, body in _cases(victim, intruder_id):
        if (
            intruder_kind == "team-mate driver"
            and path.startswith(f"/api/teams/{team.id}")
            and method == "GET"
        ):
            continue  # a driver is a member of their own team: reading its roster is allowed
        if intruder_kind == "team-mate driver" and path.startswith("/api/teams/"):
            expected = {403}  # a member who is not a manager sees the team but may not change it
        elif intruder_kind == "other driver's key" and path.startswith(("/api/keys/", "/api/me/")):
            expected = {
                403
            }  # keys never manage keys nor answer invitations: refused before any id is looked at
        else:
            expected = {404}
        response = await client.request(method, path, json=body, headers=headers)
        if response.status_code not in expected:
            wrong.append((method, path, response.status_code, response.text[:120]))
    assert not wrong, wrong
    assert await _snapshot(client, admin, victim) == before


# Writes that link an intruder's own team, driver or session ({own_…}) to the victim's objects, with the answer
# each kind of intruder must get: 202 is an invitation the victim never answers, None skips a case the intruder
# may legitimately do (an engineer of the victim's team reads its sessions as references).
INTRUDERS = [
    "other team manager",
    "other team engineer",
    "other team driver",
    "other driver's key",
    "dual role",
]
LINK_TABLE: list[tuple[str, str, dict[str, Any] | None, list[int | None]]] = [
    (
        "POST",
        "/api/teams/{own_team}/members",
        {"userId": "{victim_driver_user}", "role": "driver"},
        [202, 403, 403, 404, 202],
    ),
    (
        "POST",
        "/api/teams/{own_team}/members",
        {"userId": "{victim_manager}", "role": "engineer"},
        [202, 403, 403, 404, 202],
    ),
    ("POST", "/api/teams/{own_team}/drivers", {"driverId": "{driver_id}"}, [404, 403, 403, 404, 403]),
    ("PATCH", "/api/drivers/{own_driver}", {"userId": "{victim_driver2_user}"}, [404, 403, 403, 403, 404]),
    (
        "POST",
        "/api/drivers",
        {"name": "X", "teamId": "{own_team}", "userId": "{victim_driver2_user}"},
        [404, 403, 403, 403, 404],
    ),
    ("PATCH", "/api/drivers/{driver_id}", {"userId": "{intruder_id}"}, [404, 404, 404, 404, 403]),
    ("DELETE", "/api/drivers/{driver_id}", None, [404, 404, 404, 404, 403]),
    (
        "POST",
        "/api/keys",
        {"driverId": "{driver_id}", "scopes": ["telemetry:read"]},
        [404, 404, 404, 403, 403],
    ),
    ("POST", "/api/keys", {"teamId": "{team_id}", "scopes": ["telemetry:read"]}, [404, 404, 404, 403, 403]),
    (
        "GET",
        "/api/sessions/{own_session}/laps/1/compare?with={session_id}:1",
        None,
        [404, 404, 404, 404, None],
    ),
    (
        "POST",
        "/api/ai/feedback",
        {
            "driverId": "{own_driver}",
            "sessionId": "{own_session}",
            "telemetryData": {"lap": 1, "reference": {"sessionId": "{session_id}", "lap": 1}},
        },
        [404, 404, 404, 404, None],
    ),
    (
        "PATCH",
        "/api/tracks/{track_id}",
        {"name": "Hijacked", "sectorSplits": [0.5]},
        [403, 403, 403, 403, 403],
    ),
    ("DELETE", "/api/tracks/{track_id}", None, [403, 403, 403, 403, 403]),
    # A session of the intruder's own on the victim's track (one catalogue: allowed), by name and by id, with a
    # length of its own: it stays the intruder session's, the victim's track and session do not change.
    (
        "POST",
        "/api/sessions",
        {
            "driverId": "{own_driver}",
            "name": "own",
            "trackName": "{victim_track_name}",
            "trackLengthM": 1234.5,
        },
        [201, 201, 201, 201, 201],
    ),
    (
        "POST",
        "/api/sessions",
        {"driverId": "{own_driver}", "name": "own", "trackId": "{track_id}", "trackLengthM": 2345.5},
        [201, 201, 201, 201, 201],
    ),
    # A session for the victim's driver, on the victim's track by id or by name: as if the driver did not exist.
    (
        "POST",
        "/api/sessions",
        {"driverId": "{driver_id}", "name": "theirs", "trackId": "{track_id}"},
        [404, 404, 404, 404, None],
    ),
    (
        "POST",
        "/api/sessions",
        {
            "driverId": "{driver_id}",
            "name": "theirs",
            "trackName": "{victim_track_name}",
            "trackLengthM": 999.0,
        },
        [404, 404, 404, 404, None],
    ),
]


@dataclass
class Intruder:
    headers: dict[str, str]
    user_id: str
    team_id: str
    driver_id: str
    session_id: str


async def _intruder(
    client: httpx.AsyncClient, world: World, victim: Team, other: Team, kind: str
) -> Intruder:
    """The intruder with a team, a driver and a session of its own."""
    if kind == "dual role":  # an engineer of the victim's team who manages a team of their own
        dual = await world.user("manager")
        joined = await client.post(
            f"/api/teams/{victim.id}/members",
            json={"userId": dual.id, "role": "engineer"},
            headers=victim.manager.headers,
        )
        assert joined.status_code == 201, joined.text
        own_team = (await client.post("/api/teams", json={"name": "Dual"}, headers=dual.headers)).json()["id"]
        driver = await client.post(
            "/api/drivers", json={"name": "Dual's", "teamId": own_team}, headers=dual.headers
        )
        own_driver = driver.json()["id"]
        headers, user_id, session_by = dual.headers, dual.id, dual.headers
    else:
        own_team, own_driver, session_by = other.id, str(other.driver.driver_id), other.engineer.headers
        if kind == "other driver's key":
            key = await world.api_key(
                driver_id=own_driver,
                scopes=["telemetry:read", "sessions:write", "sessions:read", "ai:write", "ai:read"],
            )
            headers, user_id = {"X-API-Key": key}, other.driver.id
        else:
            actor = {"other team manager": other.manager, "other team engineer": other.engineer}.get(
                kind, other.driver
            )
            headers, user_id = actor.headers, actor.id
    session = await client.post(
        "/api/sessions", json={"driverId": own_driver, "name": "own"}, headers=session_by
    )
    assert session.status_code == 201, session.text
    return Intruder(headers, user_id, own_team, own_driver, session.json()["id"])


@pytest.mark.parametrize("intruder_kind", INTRUDERS)
async def test_intruders_cannot_link_their_objects_to_ours(
    client: httpx.AsyncClient, world: World, admin: Actor, team: Team, other_team: Team, intruder_kind: str
) -> None:
    victim = await _victim(client, world, team)
    intruder = await _intruder(client, world, team, other_team, intruder_kind)
    ids = {
        "own_team": intruder.team_id,
        "own_driver": intruder.driver_id,
        "own_session": intruder.session_id,
        "intruder_id": intruder.user_id,
        "victim_driver_user": team.driver.id,
        "victim_driver2_user": team.driver2.id,
        "victim_manager": team.manager.id,
        "team_id": team.id,
        "driver_id": victim.driver_id,
        "session_id": victim.session_id,
        "track_id": victim.track_id,
        "victim_track_name": victim.track_name,
    }
    before = await _snapshot(client, admin, victim)
    wrong = []
    for method, path, body, answers in LINK_TABLE:
        expected = answers[INTRUDERS.index(intruder_kind)]
        if expected is None:
            continue
        response = await client.request(
            method, _filled(path, ids), json=_filled(body, ids), headers=intruder.headers
        )
        if response.status_code != expected:
            wrong.append((method, path, response.status_code, response.text[:160]))
    assert not wrong, wrong
    assert await _snapshot(client, admin, victim) == before
    # The intruder's session on the victim's track shows its own length, nothing the victim's laps measured.
    own = await client.get(f"/api/sessions/{intruder.driver_id}", headers=intruder.headers)
    on_track = [s for s in own.json() if s["trackId"] == victim.track_id]
    assert sorted(s["trackLengthM"] for s in on_track) == [1234.5, 2345.5], on_track
    if intruder_kind != "dual role":  # nothing of the victim's became visible
        assert (
            await client.get(f"/api/drivers/{victim.driver_id}", headers=intruder.headers)
        ).status_code == 404
