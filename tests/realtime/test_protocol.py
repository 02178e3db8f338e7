"""The /ws protocol over real loopback sockets: auth, subscribe/unsubscribe, ping, access, limits."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import Actor, RunningServer, Team, World
from tests.realtime.socket_client import (
    expect,
    frames_until_closed,
    next_frame,
    open_socket,
    signed_in,
    subscribe,
)


async def test_subscriber_hears_published_messages_in_order_until_it_unsubscribes(
    server: RunningServer, team: Team
) -> None:
    channel = f"telemetry:{team.driver.driver_id}"
    async with await signed_in(server, team.engineer.token) as ws:
        answer = await subscribe(ws, channel, id=7)
        assert answer["type"] == "subscribed" and answer["channel"] == channel and answer["id"] == 7
        for lap in range(3):
            server.services.hub.publish(channel, {"lap": lap, "speed": 201.5})
        frames = [await expect(ws, "message") for _ in range(3)]
        assert [f["data"]["lap"] for f in frames] == [0, 1, 2]
        assert [f["seq"] for f in frames] == [frames[0]["seq"] + i for i in range(3)]
        assert {f["channel"] for f in frames} == {channel}

        await ws.send(orjson.dumps({"type": "unsubscribe", "channel": channel}).decode())
        assert (await next_frame(ws)) == {"type": "unsubscribed", "channel": channel}
        server.services.hub.publish(channel, {"lap": 3})
        await ws.send('{"type":"ping","id":"p1"}')
        assert await next_frame(ws) == {"type": "pong", "id": "p1"}  # the lap-3 message never came


@pytest.mark.parametrize("written", ["braces", "urn", "upper case", "no hyphens"])
async def test_a_uuid_written_any_way_subscribes_to_the_channel_data_is_published_on(
    server: RunningServer, team: Team, written: str
) -> None:
    # Issue 17, item 8: `telemetry:{…}` subscribed under the literal text and never heard anything.
    driver = uuid.UUID(str(team.driver.driver_id))
    raw = {
        "braces": f"{{{driver}}}",
        "urn": driver.urn,
        "upper case": str(driver).upper(),
        "no hyphens": driver.hex,
    }[written]
    async with await signed_in(server, team.engineer.token) as ws:
        answer = await subscribe(ws, f"telemetry:{raw}")
        assert answer["type"] == "subscribed" and answer["channel"] == f"telemetry:{driver}", answer
        async with httpx.AsyncClient(base_url=server.url) as http:
            created = await http.post(
                "/api/sessions",
                json={"driverId": str(driver), "name": "heard"},
                headers=team.engineer.headers,
            )
        assert created.status_code == 201, created.text
        heard = await expect(ws, "message")
        assert heard["channel"] == f"telemetry:{driver}"
        assert (
            heard["data"]["type"] == "session_started"
            and heard["data"]["session"]["id"] == created.json()["id"]
        )
        await ws.send(orjson.dumps({"type": "unsubscribe", "channel": f"telemetry:{raw}"}).decode())
        assert (await next_frame(ws)) == {"type": "unsubscribed", "channel": f"telemetry:{driver}"}
        assert server.services.hub.subscriber_count(f"telemetry:{driver}") == 0


async def test_another_teams_driver_is_not_found_and_nothing_is_heard(
    server: RunningServer, team: Team, other_team: Team
) -> None:
    channel = f"telemetry:{team.driver.driver_id}"
    async with await signed_in(server, other_team.manager.token) as ws:
        answer = await subscribe(ws, channel)
        assert answer["type"] == "error" and answer["code"] == "not_found" and answer["channel"] == channel
        server.services.hub.publish(channel, {"secret": True})
        await ws.send('{"type":"ping"}')
        assert await next_frame(ws) == {"type": "pong"}


async def test_a_driver_hears_themself_but_not_a_teammate(server: RunningServer, team: Team) -> None:
    async with await signed_in(server, team.driver.token) as ws:
        assert (await subscribe(ws, f"ai:{team.driver.driver_id}"))["type"] == "subscribed"
        assert (await subscribe(ws, f"ai:{team.driver2.driver_id}"))["code"] == "not_found"


@pytest.mark.parametrize(
    "channel", ["weather:rain", "telemetry:not-a-uuid", "telemetry", f"coaching:{uuid.uuid4()}", ""]
)
async def test_unknown_or_malformed_channels_are_refused(
    server: RunningServer, admin: Actor, channel: str
) -> None:
    async with await signed_in(server, admin.token) as ws:
        answer = await subscribe(ws, channel)
        assert answer["type"] == "error"
        assert answer["code"] in {"unknown_channel", "malformed"}, answer


async def test_malformed_and_unknown_frames_get_an_error_and_the_socket_stays_open(
    server: RunningServer, admin: Actor
) -> None:
    async with await signed_in(server, admin.token) as ws:
        await ws.send("{not json")
        assert (await expect(ws, "error"))["code"] == "malformed"
        await ws.send('["subscribe"]')
        assert (await expect(ws, "error"))["code"] == "malformed"
        await ws.send('{"type":"dance","id":3}')
        assert await next_frame(ws) == {
            "type": "error",
            "code": "unknown_type",
            "message": "unknown frame type 'dance'",
            "id": 3,
        }
        await ws.send('{"type":"ping"}')
        await expect(ws, "pong")


async def test_max_rate_must_be_positive_and_only_on_telemetry_or_video(
    server: RunningServer, team: Team
) -> None:
    async with await signed_in(server, team.manager.token) as ws:
        assert (await subscribe(ws, f"ai:{team.driver.driver_id}", maxRate=5))["code"] == "invalid_max_rate"
        assert (await subscribe(ws, f"telemetry:{team.driver.driver_id}", maxRate=0))[
            "code"
        ] == "invalid_max_rate"
        assert (await subscribe(ws, f"telemetry:{team.driver.driver_id}", maxRate="x"))["code"] == "malformed"


async def test_oversized_frame_is_refused_and_the_socket_closed_1009(
    server: RunningServer, admin: Actor
) -> None:
    async with await signed_in(server, admin.token) as ws:
        await ws.send(orjson.dumps({"type": "subscribe", "channel": "x", "pad": "a" * 70_000}).decode())
        frames = await frames_until_closed(ws)
        assert frames[-1]["code"] == "frame_too_large"
        assert ws.close_code == 1009


async def test_token_in_subprotocol_authenticates(server: RunningServer, team: Team) -> None:
    url = f"{server.ws_url}/ws"
    async with connect(url, subprotocols=["pitbox", f"bearer.{team.driver.token}"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "pitbox"
        assert (await expect(ws, "authenticated"))["kind"] == "user"


async def test_token_in_first_auth_frame_authenticates(server: RunningServer, team: Team) -> None:
    async with await open_socket(server) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": team.driver.token}).decode())
        await expect(ws, "authenticated")
        assert (await subscribe(ws, f"telemetry:{team.driver.driver_id}"))["type"] == "subscribed"


@pytest.mark.parametrize("token", ["not-a-jwt", "pbk_000000000000_nope", None])
async def test_bad_or_missing_credentials_close_4401(server: RunningServer, token: str | None) -> None:
    async with await open_socket(server, token) as ws:
        if token is None:
            await ws.send('{"type":"subscribe","channel":"x"}')  # anything but auth
        frames = await frames_until_closed(ws)
        assert frames[-1]["type"] == "error"
        assert ws.close_code == 4401


async def test_expired_token_closes_the_socket_4401(server: RunningServer, team: Team) -> None:
    token, _ = server.services.auth.issue_token(uuid.UUID(team.driver.id), timedelta(seconds=2))
    async with await signed_in(server, token) as ws:
        assert (await subscribe(ws, f"telemetry:{team.driver.driver_id}"))["type"] == "subscribed"
        frames = await frames_until_closed(ws)
        assert frames[-1]["code"] == "token_expired"
        assert ws.close_code == 4401


async def test_refreshed_token_for_the_same_user_is_accepted_and_another_user_is_not(
    server: RunningServer, team: Team
) -> None:
    async with await signed_in(server, team.driver.token) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": team.driver.token, "id": 1}).decode())
        assert (await expect(ws, "authenticated"))["id"] == 1
        await ws.send(orjson.dumps({"type": "auth", "token": team.manager.token}).decode())
        assert (await expect(ws, "error"))["code"] == "identity_changed"


async def test_api_key_needs_the_read_scope_of_the_channel(
    server: RunningServer, world: World, team: Team
) -> None:
    driver_id = team.driver.driver_id
    assert driver_id is not None
    reader = await world.api_key(driver_id=driver_id, scopes=["telemetry:read"])
    writer = await world.api_key(driver_id=driver_id, scopes=["telemetry:write"])
    async with await signed_in(server, reader) as ws:
        assert (await subscribe(ws, f"telemetry:{driver_id}"))["type"] == "subscribed"
        assert (await subscribe(ws, f"telemetry:{team.driver2.driver_id}"))["code"] == "not_found"
    async with await signed_in(server, writer) as ws:
        assert (await subscribe(ws, f"telemetry:{driver_id}"))["code"] == "missing_scope"


async def test_browser_origin_must_be_in_the_allowlist(server: RunningServer, team: Team) -> None:
    async with await open_socket(server, team.driver.token, origin="http://evil.test") as ws:
        frames = await frames_until_closed(ws)
        assert [f["code"] for f in frames] == ["origin_not_allowed"]
        assert ws.close_code == 4403
    async with await open_socket(server, team.driver.token, origin="http://dashboard.test") as ws:
        await expect(ws, "authenticated")


async def test_the_dashboard_served_by_this_server_may_connect(server: RunningServer, team: Team) -> None:
    # The page at / opens the socket with its own origin, which need not be listed in CORS_ORIGINS.
    async with await open_socket(server, team.driver.token, origin=server.url) as ws:
        await expect(ws, "authenticated")


async def test_http_request_to_ws_is_not_a_websocket(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus):
        async with connect(f"{server.ws_url}/nope"):
            pass
