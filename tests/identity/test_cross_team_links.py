"""Links across teams need rights on both sides (issue 17, item 1; docs/security.md, "Links across teams").

The attack: a manager of team B who knows a user id of team A added that user to B, and from then on read the
driver's data, made an API key for it, re-linked another of A's drivers to himself and deleted it.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import Actor, Team, World, assert_error


async def _invite(client: httpx.AsyncClient, team: Team, user_id: str, role: str) -> dict[str, Any]:
    response = await client.post(
        f"/api/teams/{team.id}/members", json={"userId": user_id, "role": role}, headers=team.manager.headers
    )
    assert response.status_code == 202, response.text
    invitation: dict[str, Any] = response.json()
    return invitation


async def _session(client: httpx.AsyncClient, team: Team, driver: Actor) -> str:
    response = await client.post(
        "/api/sessions", json={"driverId": driver.driver_id, "name": "stint"}, headers=team.engineer.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_manager_of_another_team_cannot_take_a_driver(
    client: httpx.AsyncClient, team: Team, other_team: Team, admin: Actor
) -> None:
    a, b = team, other_team
    session = await _session(client, a, a.driver)
    before = (await client.get(f"/api/drivers/{a.driver.driver_id}", headers=admin.headers)).json()
    # Adding A's driver to B becomes an invitation the driver has not accepted: B gains nothing.
    invitation = await _invite(client, b, a.driver.id, "driver")
    assert (invitation["teamId"], invitation["userId"], invitation["role"]) == (b.id, a.driver.id, "driver")
    h = b.manager.headers
    for path in (
        f"/api/drivers/{a.driver.driver_id}",
        f"/api/sessions/{a.driver.driver_id}",
        f"/api/sessions/{session}/telemetry",
        f"/api/sessions/{session}/video",
        f"/api/sessions/{session}/feedback",
    ):
        assert_error(await client.get(path, headers=h), 404)
    key = await client.post(
        "/api/keys", json={"driverId": a.driver.driver_id, "scopes": ["telemetry:read"]}, headers=h
    )
    assert_error(key, 404)
    # Re-linking another of A's drivers to himself, and deleting it: as if it did not exist.
    relink = await client.patch(
        f"/api/drivers/{a.driver2.driver_id}", json={"userId": b.manager.id}, headers=h
    )
    assert_error(relink, 404)
    assert_error(await client.delete(f"/api/drivers/{a.driver2.driver_id}", headers=h), 404)
    # Nor can B pull the driver into B by id, or re-link one of B's own drivers to A's user.
    assert_error(
        await client.post(f"/api/teams/{b.id}/drivers", json={"driverId": a.driver.driver_id}, headers=h), 404
    )
    own = await client.patch(f"/api/drivers/{b.driver.driver_id}", json={"userId": a.driver2.id}, headers=h)
    assert_error(own, 404)
    after = (await client.get(f"/api/drivers/{a.driver.driver_id}", headers=admin.headers)).json()
    assert after == before and after["teamIds"] == [a.id]
    mine = (await client.get("/api/me", headers=a.driver.headers)).json()
    assert [t["id"] for t in mine["teams"]] == [a.id]


async def test_the_invited_user_accepts_or_declines_and_a_manager_may_withdraw(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    a, b = team, other_team
    first = await _invite(client, b, a.engineer.id, "engineer")
    listed = (await client.get("/api/me/invitations", headers=a.engineer.headers)).json()
    assert [(i["id"], i["teamName"], i["role"]) for i in listed] == [
        (first["id"], first["teamName"], "engineer")
    ]
    assert [
        i["id"]
        for i in (await client.get(f"/api/teams/{b.id}/invitations", headers=b.manager.headers)).json()
    ] == [first["id"]]
    # Only the invited user answers it.
    for other in (a.manager, b.engineer, b.manager):
        assert_error(
            await client.post(f"/api/me/invitations/{first['id']}/accept", headers=other.headers), 404
        )
    declined = await client.post(f"/api/me/invitations/{first['id']}/decline", headers=a.engineer.headers)
    assert declined.status_code == 204
    assert (await client.get("/api/me/invitations", headers=a.engineer.headers)).json() == []
    assert_error(
        await client.post(f"/api/me/invitations/{first['id']}/accept", headers=a.engineer.headers), 404
    )
    # Withdrawn before it is answered: nothing left to accept.
    withdrawn = await _invite(client, b, a.engineer.id, "engineer")
    gone = await client.delete(f"/api/teams/{b.id}/invitations/{withdrawn['id']}", headers=b.manager.headers)
    assert gone.status_code == 204
    assert_error(
        await client.post(f"/api/me/invitations/{withdrawn['id']}/accept", headers=a.engineer.headers), 404
    )
    # Accepted: the driver joins B with their profile (their consent), and B's staff see the driver.
    driving = await _invite(client, b, a.driver.id, "driver")
    accepted = await client.post(f"/api/me/invitations/{driving['id']}/accept", headers=a.driver.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "teamId": b.id,
        "teamName": driving["teamName"],
        "role": "driver",
        "status": "accepted",
    }
    seen = await client.get(f"/api/drivers/{a.driver.driver_id}", headers=b.engineer.headers)
    assert seen.status_code == 200 and sorted(seen.json()["teamIds"]) == sorted([a.id, b.id])


async def test_an_id_that_is_no_user_is_invited_like_one_that_is(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    real = await _invite(client, other_team, team.engineer.id, "engineer")
    made_up = await _invite(client, other_team, str(uuid.uuid4()), "engineer")
    assert set(real) == set(made_up)
    assert {k: v for k, v in real.items() if k not in ("id", "userId", "createdAt", "expiresAt")} == {
        k: v for k, v in made_up.items() if k not in ("id", "userId", "createdAt", "expiresAt")
    }


async def test_a_user_is_added_directly_by_whoever_manages_every_team_they_belong_to(
    client: httpx.AsyncClient, world: World, team: Team, other_team: Team, admin: Actor
) -> None:
    a, b = team, other_team
    # A user in no team, without a driver profile: any team manager may add them.
    boss = await world.user("manager")
    added = await client.post(
        f"/api/teams/{a.id}/members", json={"userId": boss.id, "role": "manager"}, headers=a.manager.headers
    )
    assert added.status_code == 201, added.text
    # Now in A: B's manager may only invite; once accepted, boss manages A and B.
    invitation = await _invite(client, b, boss.id, "manager")
    assert (
        await client.post(f"/api/me/invitations/{invitation['id']}/accept", headers=boss.headers)
    ).status_code == 200
    # Managing every team of A's driver, boss moves the driver into B directly.
    moved = await client.post(
        f"/api/teams/{b.id}/members", json={"userId": a.driver2.id, "role": "driver"}, headers=boss.headers
    )
    assert moved.status_code == 201, moved.text
    driver = (await client.get(f"/api/drivers/{a.driver2.driver_id}", headers=boss.headers)).json()
    assert sorted(driver["teamIds"]) == sorted([a.id, b.id])
    # A driver profile in no team is linked by nobody but an admin (or its own user accepting).
    loner = await world.user("driver")
    assert_error(
        await client.post(
            f"/api/teams/{a.id}/drivers", json={"driverId": loner.driver_id}, headers=a.manager.headers
        ),
        404,
    )
    await _invite(client, a, loner.id, "driver")
    by_admin = await client.post(
        f"/api/teams/{a.id}/members", json={"userId": loner.id, "role": "driver"}, headers=admin.headers
    )
    assert by_admin.status_code == 201, by_admin.text


async def test_changing_or_deleting_a_driver_needs_every_team_that_holds_it(
    client: httpx.AsyncClient, world: World, team: Team, other_team: Team, admin: Actor
) -> None:
    a, b = team, other_team
    # A's driver2 joins B too (by accepting); A's manager and B's manager each hold only part of it now.
    invitation = await _invite(client, b, a.driver2.id, "driver")
    assert (
        await client.post(f"/api/me/invitations/{invitation['id']}/accept", headers=a.driver2.headers)
    ).status_code == 200
    d = a.driver2.driver_id
    for manager in (a.manager, b.manager):
        assert_error(
            await client.patch(f"/api/drivers/{d}", json={"name": "Mine"}, headers=manager.headers), 403
        )
        assert_error(
            await client.patch(f"/api/drivers/{d}", json={"userId": None}, headers=manager.headers), 403
        )
        assert_error(await client.delete(f"/api/drivers/{d}", headers=manager.headers), 403)
    # A driver with sessions is deleted by an admin only.
    await _session(client, a, a.driver)
    refused = await client.delete(f"/api/drivers/{a.driver.driver_id}", headers=a.manager.headers)
    assert_error(refused, 409, "driver_has_sessions")
    assert (
        await client.delete(f"/api/drivers/{a.driver.driver_id}", headers=admin.headers)
    ).status_code == 204
    # A driver without sessions, held by A only, is A's manager's to delete.
    spare = await client.post(
        "/api/drivers", json={"name": "Spare", "teamId": a.id}, headers=a.manager.headers
    )
    assert (
        await client.delete(f"/api/drivers/{spare.json()['id']}", headers=a.manager.headers)
    ).status_code == 204


async def test_creating_a_driver_for_a_user_tells_nothing_about_users_the_caller_may_not_link(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    # Issue 17, item 8: 409 for an existing user and 404 for a random id let ids be probed.
    h = other_team.manager.headers
    answers = [
        await client.post(
            "/api/drivers", json={"name": "X", "teamId": other_team.id, "userId": user_id}, headers=h
        )
        for user_id in (team.driver.id, team.engineer.id, str(uuid.uuid4()))
    ]
    bodies = [assert_error(answer, 404) for answer in answers]
    assert bodies[0] == bodies[1] == bodies[2]
    # Its own team's driver, which it manages: the real conflict.
    own = await client.post(
        "/api/drivers",
        json={"name": "X", "teamId": team.id, "userId": team.driver.id},
        headers=team.manager.headers,
    )
    assert_error(own, 409, "user_has_driver")


async def test_an_api_key_stops_working_when_its_creators_rights_end(
    client: httpx.AsyncClient, world: World, team: Team
) -> None:
    deputy = await world.user("manager")
    joined = await client.post(
        f"/api/teams/{team.id}/members",
        json={"userId": deputy.id, "role": "manager"},
        headers=team.manager.headers,
    )
    assert joined.status_code == 201, joined.text
    made = []
    for owner in ({"driverId": team.driver.driver_id}, {"teamId": team.id}):
        key = await client.post(
            "/api/keys", json={**owner, "scopes": ["sessions:read"]}, headers=deputy.headers
        )
        assert key.status_code == 201 and key.json()["boundToCreator"] is True, key.text
        made.append({"X-API-Key": key.json()["key"]})
        assert (await client.get("/api/me", headers=made[-1])).status_code == 200
    operator_key = {
        "X-API-Key": await world.api_key(driver_id=team.driver.driver_id, scopes=["sessions:read"])
    }
    removed = await client.delete(f"/api/teams/{team.id}/members/{deputy.id}", headers=team.manager.headers)
    assert removed.status_code == 204
    for key in made:
        assert_error(await client.get("/api/me", headers=key), 401, "invalid_api_key")
        assert_error(await client.get(f"/api/sessions/{team.driver.driver_id}", headers=key), 401)
    # A key an operator made is bound to nobody.
    assert (
        await client.get(f"/api/sessions/{team.driver.driver_id}", headers=operator_key)
    ).status_code == 200


async def test_an_invitation_reissued_for_another_role_cannot_be_accepted_under_its_old_id(
    client: httpx.AsyncClient, team: Team, other_team: Team, admin: Actor
) -> None:
    # Review after issue 17: re-posting the add with a new role kept the invitation id, so a driver who accepted
    # what they saw as "engineer" joined as "driver" and shared their data (or the reverse).
    a, b = team, other_team
    shown = await _invite(client, b, a.driver.id, "engineer")
    assert (await _invite(client, b, a.driver.id, "engineer"))["id"] == shown["id"]  # the same offer, renewed
    switched = await _invite(client, b, a.driver.id, "driver")
    assert switched["id"] != shown["id"] and switched["role"] == "driver"
    listed = (await client.get("/api/me/invitations", headers=a.driver.headers)).json()
    assert [(i["id"], i["role"]) for i in listed] == [(switched["id"], "driver")]
    managers_view = (await client.get(f"/api/teams/{b.id}/invitations", headers=b.manager.headers)).json()
    assert [(i["id"], i["role"]) for i in managers_view] == [(switched["id"], "driver")]
    # Accepting what was shown as "engineer" does nothing: that offer is gone, and the driver stays out of B.
    stale = await client.post(f"/api/me/invitations/{shown['id']}/accept", headers=a.driver.headers)
    assert_error(stale, 404)
    driver = (await client.get(f"/api/drivers/{a.driver.driver_id}", headers=admin.headers)).json()
    assert driver["teamIds"] == [a.id]
    assert_error(await client.get(f"/api/drivers/{a.driver.driver_id}", headers=b.engineer.headers), 404)
    assert [t["id"] for t in (await client.get("/api/me", headers=a.driver.headers)).json()["teams"]] == [
        a.id
    ]
    # The other way round: shown "driver", switched to "manager"; the old id cannot make them a manager.
    as_driver = await _invite(client, b, a.engineer.id, "driver")
    as_manager = await _invite(client, b, a.engineer.id, "manager")
    assert as_manager["id"] != as_driver["id"]
    assert_error(
        await client.post(f"/api/me/invitations/{as_driver['id']}/accept", headers=a.engineer.headers), 404
    )
    assert_error(
        await client.post(f"/api/me/invitations/{as_driver['id']}/decline", headers=a.engineer.headers), 404
    )
    assert_error(await client.get(f"/api/teams/{b.id}", headers=a.engineer.headers), 404)
    # The invitation the user now sees is accepted for exactly the role it shows.
    accepted = await client.post(f"/api/me/invitations/{switched['id']}/accept", headers=a.driver.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["role"] == "driver"
    members = (await client.get(f"/api/teams/{b.id}/members", headers=b.manager.headers)).json()
    assert {m["userId"]: m["role"] for m in members}[a.driver.id] == "driver"


async def test_bad_invitation_ids_and_roles_are_refused_with_4xx(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    h = team.engineer.headers
    for path in ("/api/me/invitations/not-a-uuid/accept", "/api/me/invitations/1/decline"):
        assert_error(await client.post(path, headers=h), 422)
    assert_error(await client.post(f"/api/me/invitations/{uuid.uuid4()}/accept", headers=h), 404)
    for body in (
        {"userId": team.engineer.id, "role": "admin"},
        {"userId": team.engineer.id, "role": None},
        {"userId": team.engineer.id},
        {"userId": "someone", "role": "driver"},
    ):
        refused = await client.post(
            f"/api/teams/{other_team.id}/members", json=body, headers=other_team.manager.headers
        )
        assert_error(refused, 422)
    assert (await client.get("/api/me/invitations", headers=h)).json() == []


async def test_a_member_may_leave_a_team_but_not_remove_others(
    client: httpx.AsyncClient, world: World, team: Team, other_team: Team
) -> None:
    # The engineer leaves: the team is then as unknown to them as any other team.
    left = await client.delete(
        f"/api/teams/{team.id}/members/{team.engineer.id}", headers=team.engineer.headers
    )
    assert left.status_code == 204, left.text
    assert_error(await client.get(f"/api/teams/{team.id}", headers=team.engineer.headers), 404)
    assert_error(
        await client.get(f"/api/drivers/{team.driver.driver_id}", headers=team.engineer.headers), 404
    )
    assert team.engineer.id not in {
        m["userId"]
        for m in (await client.get(f"/api/teams/{team.id}/members", headers=team.manager.headers)).json()
    }
    # Gone, they cannot leave again nor remove anyone: the team is not found.
    for user in (team.engineer, team.driver):
        assert_error(
            await client.delete(f"/api/teams/{team.id}/members/{user.id}", headers=team.engineer.headers), 404
        )
    # A member who is no manager removes only themself.
    assert_error(
        await client.delete(f"/api/teams/{team.id}/members/{team.driver2.id}", headers=team.driver.headers),
        403,
    )
    # Another team's members cannot use "leave" on someone else's team, nor remove its members.
    for intruder in (other_team.manager, other_team.driver):
        for user in (intruder, team.driver):
            assert_error(
                await client.delete(f"/api/teams/{team.id}/members/{user.id}", headers=intruder.headers), 404
            )
    # A key acts for no user: it never leaves on anyone's behalf.
    key = {"X-API-Key": await world.api_key(team_id=team.id, scopes=["sessions:read"])}
    assert_error(await client.delete(f"/api/teams/{team.id}/members/{team.driver.id}", headers=key), 403)
    # A driver leaves too; the last manager may not leave a team that still has members.
    assert (
        await client.delete(f"/api/teams/{team.id}/members/{team.driver.id}", headers=team.driver.headers)
    ).status_code == 204
    last = await client.delete(
        f"/api/teams/{team.id}/members/{team.manager.id}", headers=team.manager.headers
    )
    assert_error(last, 409, "last_manager")
    assert_error(
        await client.delete(f"/api/teams/{team.id}/members/not-a-uuid", headers=team.manager.headers), 422
    )
    remaining = (await client.get(f"/api/teams/{team.id}/members", headers=team.manager.headers)).json()
    assert sorted(m["userId"] for m in remaining) == sorted([team.manager.id, team.driver2.id])
