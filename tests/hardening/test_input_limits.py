"""Input limits answered with 413/422/429 or a refusal frame, never a 500 or a slow death.

The limits found by fuzzing (NUL and lone surrogates PostgreSQL cannot store, times far past any session) and
the small ones added for issue 12 (JSON nesting depth, sockets per caller) each have their test here; the older
ones (body size, login and voice rate limits) are proven where they live, as docs/security.md lists.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
from websockets.exceptions import ConnectionClosed

from pitbox.auth.models import MAX_JSON_DEPTH
from pitbox.auth.principal import Principal
from pitbox.sessions.models import SessionCreate
from pitbox.telemetry.models import MAX_CHANNELS
from tests.conftest import Actor, RunningServer, Team, assert_error
from tests.faults.conftest import eventually
from tests.realtime.socket_client import expect, frames_until_closed, open_socket, signed_in, subscribe


def nested(depth: int) -> Any:
    """A JSON value with objects nested `depth` deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"x": value}
    return value


async def new_session(server: RunningServer, team: Team) -> str:
    """A session of the team's driver."""
    manager = Principal(kind="user", user_id=uuid.UUID(team.manager.id), role="manager")
    driver_id = uuid.UUID(team.driver.driver_id or "")
    created = await server.services.sessions.create(
        manager, SessionCreate(driver_id=driver_id, name="limits")
    )
    return str(created.id)


#: Sockets one caller may hold on an instance, and subscriptions one socket may hold (docs/security.md).
SOCKETS_PER_CALLER = 64
SUBSCRIPTIONS_PER_SOCKET = 100


async def test_feedback_body_nested_deeper_than_the_limit_is_refused_with_422(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(server, team)
    body = {
        "driverId": team.driver.driver_id,
        "sessionId": session_id,
        "telemetryData": nested(MAX_JSON_DEPTH + 8),
    }
    response = await client.post("/api/ai/feedback", json=body, headers=team.engineer.headers)
    error = assert_error(response, 422, "invalid")
    assert "nested" in error["message"]


async def test_track_corners_nested_deeper_than_the_limit_are_refused_with_422(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    body = {"name": f"Deep {uuid.uuid4().hex[:6]}", "corners": [nested(MAX_JSON_DEPTH + 1)]}
    response = await client.post("/api/tracks", json=body, headers=admin.headers)
    assert_error(response, 422, "invalid")


async def test_a_body_nested_just_under_the_limit_is_accepted(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    body = {"name": f"Nested {uuid.uuid4().hex[:6]}", "corners": [nested(MAX_JSON_DEPTH - 3)]}
    response = await client.post("/api/tracks", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text


async def test_a_number_json_cannot_hold_anywhere_in_a_body_is_a_422_naming_its_field(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    # Python's JSON reader takes NaN, Infinity and 1e400 (read as infinity); PostgreSQL's jsonb and our
    # response encoder take none of them.
    headers = {**admin.headers, "Content-Type": "application/json"}
    for number in ("NaN", "Infinity", "-Infinity", "1e400", "-1" + "0" * 400):
        raw = f'{{"name": "Odd {uuid.uuid4().hex[:6]}", "corners": [{{"apex": 10, "exit": {number}}}]}}'
        error = assert_error(await client.post("/api/tracks", content=raw, headers=headers), 422, "invalid")
        assert error["details"][0]["field"] == "corners[0].exit", error
        assert "finite" in error["message"] and len(error["message"]) < 200, error


async def test_a_track_length_or_split_that_is_not_a_sane_number_is_a_422(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    for field, value in (
        ("lengthM", True),
        ("lengthM", 1e-300),
        ("lengthM", 99.9),
        ("lengthM", 100_001),
        ("lengthM", "2260"),
        ("sectorSplits", [True]),
        ("sectorSplits", ["0.5"]),
    ):
        body = {"name": f"Odd {uuid.uuid4().hex[:6]}", field: value}
        error = assert_error(
            await client.post("/api/tracks", json=body, headers=admin.headers), 422, "invalid"
        )
        assert error["details"][0]["field"].startswith(field), (field, value, error)
    body = {"name": f"Sane {uuid.uuid4().hex[:6]}", "lengthM": 100, "sectorSplits": [0.5]}
    assert (await client.post("/api/tracks", json=body, headers=admin.headers)).status_code == 201


async def test_text_with_nul_is_refused_with_422_and_nothing_is_stored(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    name = f"Team\x00{uuid.uuid4().hex[:6]}"
    response = await client.post("/api/teams", json={"name": name}, headers=admin.headers)
    assert_error(response, 422, "invalid")
    teams = (await client.get("/api/teams", headers=admin.headers)).json()
    assert all("\x00" not in team["name"] for team in teams)


async def test_text_with_a_lone_surrogate_is_refused_with_422(
    client: httpx.AsyncClient, admin: Actor
) -> None:
    # Python's JSON reader accepts "\ud800"; PostgreSQL cannot store it (it is not UTF-8).
    raw = b'{"name": "Track \\ud800"}'
    headers = {**admin.headers, "Content-Type": "application/json"}
    response = await client.post("/api/tracks", content=raw, headers=headers)
    assert_error(response, 422, "invalid")


async def test_login_with_nul_in_the_email_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/login", json={"email": "a\x00@b.test", "password": "x"})
    assert_error(response, 422, "invalid")


async def test_query_text_postgres_cannot_store_is_422_not_500(client: httpx.AsyncClient, team: Team) -> None:
    # Query parameters are not pydantic bodies: the database refuses the NUL, the error handler maps it.
    response = await client.get(
        f"/api/sessions/{team.driver.driver_id}", params={"car": "GT3\x00"}, headers=team.engineer.headers
    )
    assert_error(response, 422, "invalid")


async def test_nearest_frame_far_past_any_session_is_422_not_500(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(server, team)
    response = await client.get(
        f"/api/sessions/{session_id}/video/nearest",
        params={"sessionTime": "1e300"},
        headers=team.engineer.headers,
    )
    assert_error(response, 422, "invalid")


async def test_sample_with_more_channels_than_the_limit_is_refused_with_422(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id = await new_session(server, team)
    data: dict[str, float] = {"t": 1.0} | {f"ch{i}": 0.5 for i in range(MAX_CHANNELS)}
    body = {"driverId": team.driver.driver_id, "sessionId": session_id, "data": data}
    response = await client.post("/api/telemetry", content=orjson.dumps(body), headers=team.driver.headers)
    assert_error(response, 422, "too_many_channels")


async def test_sockets_beyond_the_per_caller_limit_are_refused_until_one_closes(
    server: RunningServer, team: Team
) -> None:
    hub = server.services.hub
    held = [await signed_in(server, team.engineer.token) for _ in range(SOCKETS_PER_CALLER)]
    one_too_many = await open_socket(server, team.engineer.token)
    frames = await frames_until_closed(one_too_many)
    assert frames[-1]["type"] == "error" and frames[-1]["code"] == "too_many_sockets", frames
    assert one_too_many.close_code == 4429
    # Another caller is not affected, and a closed socket frees its place (once the server has let go of it).
    other = await signed_in(server, team.manager.token)
    leaving, channel = held.pop(), f"ai:{team.driver.driver_id}"
    assert (await subscribe(leaving, channel))["type"] == "subscribed"  # to see when the server lets go of it
    await leaving.close()
    await eventually(lambda: hub.subscriber_count(channel) == 0, "the server to let go of the closed socket")
    held.append(await signed_in(server, team.engineer.token))
    await asyncio.gather(*(ws.close() for ws in [*held, other]))


async def test_subscriptions_beyond_the_per_socket_limit_are_refused_and_the_socket_stays_open(
    server: RunningServer, team: Team
) -> None:
    channels = [f"session:{await new_session(server, team)}" for _ in range(SUBSCRIPTIONS_PER_SOCKET)]
    ws = await signed_in(server, team.engineer.token)
    try:
        for channel in channels:
            assert (await subscribe(ws, channel))["type"] == "subscribed"
        refused = await subscribe(ws, f"telemetry:{team.driver.driver_id}")
        assert refused["type"] == "error" and refused["code"] == "too_many_subscriptions", refused
        # Subscribing again to a channel it holds replaces that subscription: not one more.
        assert (await subscribe(ws, channels[0]))["type"] == "subscribed"
        await ws.send('{"type":"ping"}')
        await expect(ws, "pong")
    except ConnectionClosed as closed:  # pragma: no cover - the assertion message is the point
        raise AssertionError(f"socket closed: {closed}") from None
    finally:
        await ws.close()


async def test_unknown_body_fields_are_refused_not_silently_ignored(
    client: httpx.AsyncClient, team: Team
) -> None:
    # Mass assignment: a field the route does not take (here an id, or a role) is a 422, never applied.
    body = {"name": "Renamed", "id": str(uuid.uuid4()), "role": "admin"}
    response = await client.patch(f"/api/teams/{team.id}", json=body, headers=team.manager.headers)
    error = assert_error(response, 422, "invalid")
    assert {detail["field"] for detail in error["details"]} >= {"id", "role"}
