"""Authorization: every route that takes an id, walked by callers who must not reach the object.

Another team's user, a driver reading another driver and another driver's API key get 404 (ids cannot be probed);
a caller who may see the object but not change it gets 403. Nothing changes either way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Actor, Team, World, assert_error


@dataclass
class Case:
    method: str
    path: str
    body: dict[str, object] | None = None


def identity_routes(team: Team, key_id: str) -> list[Case]:
    """Every identity route that names an object of `team`."""
    t, d = team.id, team.driver.driver_id
    return [
        Case("GET", f"/api/teams/{t}"),
        Case("PATCH", f"/api/teams/{t}", {"name": "Hijacked"}),
        Case("DELETE", f"/api/teams/{t}"),
        Case("GET", f"/api/teams/{t}/members"),
        Case("POST", f"/api/teams/{t}/members", {"userId": team.engineer.id, "role": "manager"}),
        Case("DELETE", f"/api/teams/{t}/members/{team.engineer.id}"),
        Case("POST", f"/api/teams/{t}/drivers", {"driverId": d}),
        Case("DELETE", f"/api/teams/{t}/drivers/{d}"),
        Case("GET", f"/api/drivers/{d}"),
        Case("PATCH", f"/api/drivers/{d}", {"name": "Hijacked"}),
        Case("DELETE", f"/api/drivers/{d}"),
        Case("POST", "/api/drivers", {"name": "Intruder", "teamId": t}),
        Case("POST", "/api/keys", {"driverId": d, "scopes": ["telemetry:write"]}),
        Case("POST", "/api/keys", {"teamId": t, "scopes": ["telemetry:write"]}),
        Case("DELETE", f"/api/keys/{key_id}"),
    ]


async def _snapshot(client: httpx.AsyncClient, admin: Actor, team: Team) -> object:
    got_team = (await client.get(f"/api/teams/{team.id}", headers=admin.headers)).json()
    keys = (await client.get("/api/keys", headers=admin.headers)).json()
    return got_team, sorted((k["id"], k["revokedAt"]) for k in keys)


async def _call(client: httpx.AsyncClient, case: Case, headers: dict[str, str]) -> httpx.Response:
    return await client.request(case.method, case.path, json=case.body, headers=headers)


@pytest.fixture
async def victim_key(world: World, team: Team) -> str:
    created = await world.services.keys.create_key(
        None, scopes=["telemetry:write"], driver_id=uuid.UUID(team.driver.driver_id or "")
    )
    return str(created["id"])


@pytest.mark.parametrize("intruder_kind", ["other team manager", "other team engineer", "other team driver"])
async def test_another_teams_user_gets_404_and_changes_nothing(
    client: httpx.AsyncClient, admin: Actor, team: Team, other_team: Team, victim_key: str, intruder_kind: str
) -> None:
    intruder = {
        "other team manager": other_team.manager,
        "other team engineer": other_team.engineer,
        "other team driver": other_team.driver,
    }[intruder_kind]
    before = await _snapshot(client, admin, team)
    for case in identity_routes(team, victim_key):
        response = await _call(client, case, intruder.headers)
        if case.path == "/api/drivers" and intruder.role != "manager":
            assert response.status_code in (403, 404), (case, response.text)
        else:
            assert_error(response, 404)
    assert await _snapshot(client, admin, team) == before


async def test_a_driver_cannot_reach_a_team_mates_profile(
    client: httpx.AsyncClient, admin: Actor, team: Team, victim_key: str
) -> None:
    before = await _snapshot(client, admin, team)
    d2 = team.driver2.driver_id
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(
            method,
            f"/api/drivers/{d2}",
            json={"name": "x"} if method == "PATCH" else None,
            headers=team.driver.headers,
        )
        assert_error(response, 404)
    key_for_mate = await client.post(
        "/api/keys", json={"driverId": d2, "scopes": ["telemetry:write"]}, headers=team.driver.headers
    )
    assert_error(key_for_mate, 404)
    assert await _snapshot(client, admin, team) == before


async def test_team_members_without_the_manager_role_get_403_on_changes(
    client: httpx.AsyncClient, admin: Actor, team: Team, victim_key: str
) -> None:
    before = await _snapshot(client, admin, team)
    for actor in (team.engineer, team.driver):
        assert (await client.get(f"/api/teams/{team.id}", headers=actor.headers)).status_code == 200
        assert_error(
            await client.patch(f"/api/teams/{team.id}", json={"name": "X"}, headers=actor.headers), 403
        )
        assert_error(await client.delete(f"/api/teams/{team.id}", headers=actor.headers), 403)
        assert_error(
            await client.post(
                f"/api/teams/{team.id}/members",
                json={"userId": actor.id, "role": "manager"},
                headers=actor.headers,
            ),
            403,
        )
    assert await _snapshot(client, admin, team) == before


async def test_another_drivers_api_key_gets_404(
    client: httpx.AsyncClient, world: World, admin: Actor, team: Team, other_team: Team, victim_key: str
) -> None:
    key = await world.api_key(
        driver_id=other_team.driver.driver_id, scopes=["telemetry:write", "telemetry:read"]
    )
    headers = {"X-API-Key": key}
    before = await _snapshot(client, admin, team)
    for case in identity_routes(team, victim_key):
        response = await _call(client, case, headers)
        assert response.status_code in (403, 404), (case, response.text)
        if case.method == "GET":
            assert_error(response, 404)
    assert await _snapshot(client, admin, team) == before


async def test_api_keys_cannot_manage_their_own_team(
    client: httpx.AsyncClient, world: World, team: Team
) -> None:
    key = await world.api_key(team_id=team.id, scopes=["telemetry:write"])
    headers = {"Authorization": f"Bearer {key}"}
    before = (await client.get(f"/api/teams/{team.id}", headers=headers)).json()
    assert before["id"] == team.id
    keys_before = (await client.get("/api/keys", headers=team.manager.headers)).json()
    assert_error(await client.patch(f"/api/teams/{team.id}", json={"name": "X"}, headers=headers), 403)
    assert_error(
        await client.post("/api/keys", json={"teamId": team.id, "scopes": ["ai:read"]}, headers=headers), 403
    )
    assert (await client.get(f"/api/teams/{team.id}", headers=headers)).json()["name"] == before["name"]
    assert (await client.get("/api/keys", headers=team.manager.headers)).json() == keys_before


async def test_staff_see_their_teams_drivers_and_nobody_elses(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    listed = {d["id"] for d in (await client.get("/api/drivers", headers=team.engineer.headers)).json()}
    assert {team.driver.driver_id, team.driver2.driver_id} <= listed
    assert not listed & {other_team.driver.driver_id, other_team.driver2.driver_id}
    own = {d["id"] for d in (await client.get("/api/drivers", headers=team.driver.headers)).json()}
    assert own == {team.driver.driver_id}
