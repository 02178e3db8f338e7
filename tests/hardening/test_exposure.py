"""Responses never carry what a caller must not see: hashes of passwords and keys, or stack traces."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import httpx

from tests.conftest import Actor, Team, World
from tests.video.conftest import new_session, noise_image


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


async def test_stored_content_and_every_answer_are_served_with_nosniff(
    client: httpx.AsyncClient, team: Team
) -> None:
    # Issue 17, item 8: a JPEG with an HTML tail was served without `X-Content-Type-Options: nosniff`, so an
    # old browser could sniff it into a page. Now every answer carries it: frames, audio, exports, JSON, errors.
    h = team.engineer.headers
    session = await new_session(client, team.engineer, team.driver.driver_id)
    polyglot = noise_image("JPEG", seed=17) + b"<html><script>alert(document.cookie)</script></html>"
    frame = await client.post(
        "/api/video",
        json={
            "driverId": team.driver.driver_id,
            "sessionId": session,
            "frameData": base64.b64encode(polyglot).decode(),
            "timestamp": datetime.now(UTC).isoformat(),
        },
        headers=h,
    )
    assert frame.status_code == 201, frame.text
    spoken = await client.post("/api/voice/synthesize", json={"text": "Box this lap"}, headers=h)
    answers = [
        await client.get(f"/api/video/{frame.json()['id']}", headers=h),
        await client.get(f"/api/voice/audio/{spoken.headers['x-voice-key']}", headers=h),
        await client.get(f"/api/sessions/{session}/telemetry?format=csv", headers=h),
        await client.get("/api/me", headers=h),
        await client.get("/api/no-such-route", headers=h),
        spoken,
    ]
    for answer in answers:
        assert answer.status_code < 500, answer.text[:200]
        assert answer.headers.get("x-content-type-options") == "nosniff", (answer.request.url, answer.headers)
