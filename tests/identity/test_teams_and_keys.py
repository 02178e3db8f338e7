"""Teams, drivers, tracks and API keys through the API, as a team manager builds them."""

from __future__ import annotations

import httpx

from tests.conftest import Actor, Team, World, assert_error


async def test_manager_builds_a_team_with_a_driver(client: httpx.AsyncClient, world: World) -> None:
    manager = await world.user("manager")
    created = await client.post("/api/teams", json={"name": "Scuderia Test"}, headers=manager.headers)
    assert created.status_code == 201, created.text
    team_id = created.json()["id"]
    driver = await client.post(
        "/api/drivers", json={"name": "Alex Racer", "teamId": team_id}, headers=manager.headers
    )
    assert driver.status_code == 201, driver.text
    assert driver.json()["teamIds"] == [team_id]
    got = (await client.get(f"/api/teams/{team_id}", headers=manager.headers)).json()
    assert [m["role"] for m in got["members"]] == ["manager"]
    assert [d["name"] for d in got["drivers"]] == ["Alex Racer"]


async def test_driver_creation_is_validated(client: httpx.AsyncClient, team: Team) -> None:
    h = team.manager.headers
    assert_error(await client.post("/api/drivers", json={"name": ""}, headers=h), 422)
    assert_error(await client.post("/api/drivers", json={"name": "No Team"}, headers=h), 422)
    assert_error(await client.post("/api/drivers", json={"name": "X", "teamId": "nope"}, headers=h), 422)
    assert_error(
        await client.post("/api/drivers", json={"name": "X", "teamId": team.id, "extra": 1}, headers=h), 422
    )


async def test_drivers_cannot_create_teams(client: httpx.AsyncClient, team: Team, admin: Actor) -> None:
    name = f"Mine {team.id[:8]}"
    assert_error(await client.post("/api/teams", json={"name": name}, headers=team.driver.headers), 403)
    teams = (await client.get("/api/teams", headers=admin.headers)).json()
    assert name not in {t["name"] for t in teams}


async def test_last_manager_cannot_leave_a_team_with_members(client: httpx.AsyncClient, team: Team) -> None:
    response = await client.delete(
        f"/api/teams/{team.id}/members/{team.manager.id}", headers=team.manager.headers
    )
    assert_error(response, 409, "last_manager")
    members = (await client.get(f"/api/teams/{team.id}/members", headers=team.manager.headers)).json()
    assert {m["userId"]: m["role"] for m in members}[team.manager.id] == "manager"


async def test_api_key_is_shown_once_and_works_until_revoked(client: httpx.AsyncClient, team: Team) -> None:
    created = await client.post(
        "/api/keys",
        json={"driverId": team.driver.driver_id, "scopes": ["telemetry:write"], "name": "relay"},
        headers=team.manager.headers,
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("pbk_")
    listed = (await client.get("/api/keys", headers=team.manager.headers)).json()
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    assert key not in (await client.get("/api/keys", headers=team.manager.headers)).text
    me = await client.get("/api/me", headers={"X-API-Key": key})
    assert me.json()["scopes"] == ["telemetry:write"]
    assert (
        await client.delete(f"/api/keys/{created.json()['id']}", headers=team.manager.headers)
    ).status_code == 200
    assert_error(await client.get("/api/me", headers={"X-API-Key": key}), 401, "invalid_api_key")


async def test_api_key_requests_are_validated(client: httpx.AsyncClient, team: Team) -> None:
    h = team.manager.headers
    d = team.driver.driver_id
    assert_error(await client.post("/api/keys", json={"driverId": d, "scopes": ["root"]}, headers=h), 422)
    assert_error(await client.post("/api/keys", json={"driverId": d, "scopes": []}, headers=h), 422)
    both = {"driverId": d, "teamId": team.id, "scopes": ["ai:read"]}
    assert_error(await client.post("/api/keys", json=both, headers=h), 422, "invalid_owner")
    assert_error(await client.get("/api/me", headers={"X-API-Key": "pbk_000000000000_forged"}), 401)


async def test_tracks_are_shared_and_validated(client: httpx.AsyncClient, team: Team, admin: Actor) -> None:
    body = {"name": f"Langley {team.id[:6]}", "country": "US", "lengthM": 603.5, "sectorSplits": [0.33, 0.66]}
    created = await client.post("/api/tracks", json=body, headers=team.engineer.headers)
    assert created.status_code == 201, created.text
    track_id = created.json()["id"]
    assert (await client.get(f"/api/tracks/{track_id}", headers=team.driver.headers)).json()[
        "lengthM"
    ] == 603.5
    assert_error(await client.post("/api/tracks", json=body, headers=team.engineer.headers), 409)
    bad = {**body, "name": "Bad splits", "sectorSplits": [0.7, 0.2]}
    assert_error(await client.post("/api/tracks", json=bad, headers=team.engineer.headers), 422)
    # Whoever may create sessions may add a track (contract 3): a driver too.
    by_driver = await client.post(
        "/api/tracks", json={**body, "name": f"D {team.id}"}, headers=team.driver.headers
    )
    assert by_driver.status_code == 201, by_driver.text
    assert_error(await client.delete(f"/api/tracks/{track_id}", headers=team.manager.headers), 403)
    assert (await client.get(f"/api/tracks/{track_id}", headers=team.driver.headers)).json()["id"] == track_id
    assert (await client.delete(f"/api/tracks/{track_id}", headers=admin.headers)).status_code == 204
    assert_error(await client.get(f"/api/tracks/{track_id}", headers=admin.headers), 404)
    listed = (await client.get("/api/tracks", headers=admin.headers)).json()
    assert track_id not in {track["id"] for track in listed}


async def test_another_team_cannot_change_a_track_that_our_sector_times_hang_on(
    client: httpx.AsyncClient, world: World, team: Team, other_team: Team, admin: Actor
) -> None:
    # Issue 17, item 4: an engineer of team B renamed and re-split a track team A's sessions use.
    body = {"name": f"Shared {team.id[:8]}", "lengthM": 5000.0, "sectorSplits": [0.3, 0.6]}
    track = (await client.post("/api/tracks", json=body, headers=team.engineer.headers)).json()
    session = await client.post(
        "/api/sessions",
        json={"driverId": team.driver.driver_id, "name": "A's run", "trackId": track["id"]},
        headers=team.engineer.headers,
    )
    assert session.status_code == 201, session.text
    hijack = {"name": "Renamed by B", "sectorSplits": [0.5]}
    for intruder in (other_team.engineer, other_team.manager, team.manager):
        response = await client.patch(f"/api/tracks/{track['id']}", json=hijack, headers=intruder.headers)
        assert_error(response, 403, "role_required")
        assert_error(await client.delete(f"/api/tracks/{track['id']}", headers=intruder.headers), 403)
    key = await world.api_key(team_id=other_team.id, scopes=["sessions:write", "telemetry:write"])
    assert_error(
        await client.patch(f"/api/tracks/{track['id']}", json=hijack, headers={"X-API-Key": key}), 403
    )
    unchanged = (await client.get(f"/api/tracks/{track['id']}", headers=team.driver.headers)).json()
    assert (unchanged["name"], unchanged["sectorSplits"]) == (body["name"], [0.3, 0.6])
    fixed = await client.patch(
        f"/api/tracks/{track['id']}", json={"sectorSplits": [0.25, 0.6]}, headers=admin.headers
    )
    assert fixed.status_code == 200 and fixed.json()["sectorSplits"] == [0.25, 0.6]
