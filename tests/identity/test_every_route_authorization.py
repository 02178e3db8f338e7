"""One table walks every route that names another team's object, for every kind of intruder.

Another team's manager, engineer and driver, another driver's API key holding every scope, and a team-mate
driver (for the driver's own data) must all get 404 — ids cannot be probed — and nothing may change.
The table is checked against the OpenAPI schema, so a new route with an id cannot be forgotten.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import Actor, Team, World
from tests.telemetry.conftest import as_rows, post_batches, synthetic_laps

# Routes whose id names shared or content-addressed things, not a team's: tracks are shared reference data;
# voice audio is addressed by a hash of its text (knowing the key means knowing what it says).
NOT_TEAM_SCOPED = {"/api/tracks/{track_id}", "/api/voice/audio/{key}"}


@dataclass
class Victim:
    team: Team
    driver_id: str
    session_id: str
    frame_id: str
    feedback_id: str
    key_id: str


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


async def _victim(client: httpx.AsyncClient, world: World, team: Team) -> Victim:
    h = team.engineer.headers
    driver = str(team.driver.driver_id)
    session = (
        await client.post("/api/sessions", json={"driverId": driver, "name": "Victim"}, headers=h)
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
    key = await world.services.auth.create_key(None, scopes=["telemetry:write"], driver_id=_uuid(driver))
    return Victim(team, driver, session["id"], frame.json()["id"], feedback.json()["id"], str(key["id"]))


def _uuid(value: str) -> Any:
    import uuid

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
]


def _filled(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
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
    ]
    snapshot = [(await client.get(p, headers=h)).json() for p in paths]
    keys = (await client.get("/api/keys", headers=h)).json()
    snapshot.append(sorted((k["id"], k["revokedAt"]) for k in keys))
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
        elif intruder_kind == "other driver's key" and path.startswith("/api/keys/"):
            expected = {403}  # keys never manage keys: refused before any id is looked at, so nothing leaks
        else:
            expected = {404}
        response = await client.request(method, path, json=body, headers=headers)
        if response.status_code not in expected:
            wrong.append((method, path, response.status_code, response.text[:120]))
    assert not wrong, wrong
    assert await _snapshot(client, admin, victim) == before
