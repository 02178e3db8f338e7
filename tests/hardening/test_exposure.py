"""Responses never carry what a caller must not see: hashes of passwords and keys, or stack traces."""

from __future__ import annotations

import httpx

from tests.conftest import Actor, Team, World


async def test_responses_never_carry_password_or_key_hashes(
    client: httpx.AsyncClient, world: World, team: Team, admin: Actor
) -> None:
    await world.user("driver", team.id, password="correct horse battery staple")
    await client.post(
        "/api/keys", json={"scopes": ["telemetry:write"], "teamId": team.id}, headers=team.manager.headers
    )
    bodies = [
        (await client.get("/api/me", headers=team.manager.headers)).text,
        (await client.get("/api/keys", headers=team.manager.headers)).text,
        (await client.get(f"/api/teams/{team.id}", headers=team.manager.headers)).text,
        (await client.get(f"/api/teams/{team.id}/members", headers=admin.headers)).text,
        (await client.get("/api/drivers", headers=admin.headers)).text,
    ]
    for body in bodies:
        assert "hash" not in body.lower() and "$argon2" not in body, body[:500]
