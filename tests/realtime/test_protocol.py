"""The /ws protocol over real loopback sockets: auth, subscribe/unsubscribe, ping, access, limits."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from pitbox.app import create_app, hub_limits
from pitbox.serving import uvicorn_config
from tests.conftest import Actor, RunningServer, Team, World, make_settings, run_server
from tests.realtime.socket_client import (
    RECV_TIMEOUT,
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


async def test_max_rate_is_a_number_of_messages_per_second_from_a_tenth_to_240(
    server: RunningServer, team: Team
) -> None:
    channel = f"telemetry:{team.driver.driver_id}"
    async with await signed_in(server, team.manager.token) as ws:
        for rate in (1e-300, 0.01, 241, 1e300):
            refused = await subscribe(ws, channel, maxRate=rate)
            assert (refused["type"], refused["code"]) == ("error", "invalid_max_rate"), (rate, refused)
        assert (await subscribe(ws, channel, maxRate=True))["code"] == "malformed"
        for rate in (0.1, 240):
            assert (await subscribe(ws, channel, maxRate=rate))["type"] == "subscribed", rate


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
    # The token must expire while the socket is open, so it must outlive connecting and signing in: a short
    # lifetime keeps the test quick, and doubles while a busy machine takes longer than that to sign in.
    for ttl_s in (2, 4, 8, 16):
        token, _ = server.services.logins.issue_token(uuid.UUID(team.driver.id), timedelta(seconds=ttl_s))
        async with await open_socket(server, token) as ws:
            if (await next_frame(ws))["type"] != "authenticated":
                continue  # expired before it was signed in: that is a refusal, not what this test is about
            answer = await subscribe(ws, f"telemetry:{team.driver.driver_id}")
            frames = [answer, *await frames_until_closed(ws)]
            assert answer["type"] == "subscribed" or answer["code"] == "token_expired", answer
            assert frames[-1]["type"] == "error" and frames[-1]["code"] == "token_expired", frames
            assert ws.close_code == 4401
            return
    raise AssertionError("no token lived long enough to sign a socket in")


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


def test_a_default_server_waits_and_pings_as_documented() -> None:
    # docs/websocket.md: an `auth` frame within 10 s, `keepalive` after 25 s of silence, history for 5 minutes
    # (1,000 messages, 512 KiB), 1,024 queued frames, 64 sockets a caller, 100 subscriptions a socket; protocol
    # pings every 20 s, a peer silent for 20 s dropped. The tests below run these with shorter waits.
    settings = make_settings("postgresql://nowhere/none", Path("unused"))  # every WS_* setting left as it is
    limits = hub_limits(settings)
    assert (limits.auth_timeout_seconds, limits.keepalive_seconds, limits.history_seconds) == (10, 25, 300)
    assert (limits.history_messages, limits.history_bytes, limits.queue_frames) == (1000, 512 * 1024, 1024)
    assert (limits.sockets_per_caller, limits.subscriptions_per_socket) == (64, 100)
    config = uvicorn_config(create_app(settings), settings)
    assert (config.ws_ping_interval, config.ws_ping_timeout) == (20, 20)


@pytest.fixture(scope="module")
async def quick_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """A server whose socket waits are short: 0.3 s for an `auth` frame, a `keepalive` after 0.3 s of silence."""
    settings = make_settings(
        database_url,
        tmp_path_factory.mktemp("quick"),
        ws_auth_timeout_s=0.3,
        ws_keepalive_s=0.3,
        ingest_processes=0,
    )
    async with run_server(settings) as running:
        yield running


@pytest.fixture
async def pinging_server(database_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server that pings each peer every 0.1 s and drops one that has not answered within 2 s."""
    settings = make_settings(
        database_url, tmp_path, ws_ping_interval_s=0.1, ws_ping_timeout_s=2.0, ingest_processes=0
    )
    async with run_server(settings) as running:
        yield running


async def test_a_socket_without_a_token_that_sends_no_auth_frame_is_closed_4401(
    quick_server: RunningServer,
) -> None:
    async with await open_socket(quick_server) as ws:
        frames = await frames_until_closed(ws)
    assert [(f["type"], f["code"]) for f in frames] == [("error", "auth_timeout")]
    assert "0.3 s" in frames[0]["message"] and ws.close_code == 4401


async def test_a_quiet_socket_gets_keepalive_frames(quick_server: RunningServer, team: Team) -> None:
    async with await signed_in(quick_server, team.driver.token) as ws:
        assert (await subscribe(ws, f"ai:{team.driver.driver_id}"))["type"] == "subscribed"
        async with asyncio.timeout(RECV_TIMEOUT):
            for _ in range(2):  # nothing else is sent to it, so only keep-alives come, one after another
                assert orjson.loads(await ws.recv()) == {"type": "keepalive"}


class RawSocket:
    """A WebSocket client on a bare TCP connection (websockets' sans-I/O protocol) that answers protocol pings
    only when told to: a browser tab whose machine went to sleep stops answering them."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, protocol: ClientProtocol
    ) -> None:
        self.reader, self.writer, self.protocol = reader, writer, protocol
        self.answer_pings = True
        self.pending: collections.deque[Frame] = collections.deque()

    @classmethod
    async def open(cls, server: RunningServer, token: str) -> RawSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.settings.port)
        protocol = ClientProtocol(parse_uri(f"{server.ws_url}/ws?token={token}"))
        protocol.send_request(protocol.connect())
        raw = cls(reader, writer, protocol)
        raw._flush()
        return raw

    def _flush(self) -> None:
        self.writer.write(b"".join(self.protocol.data_to_send()))

    async def next_frame(self) -> Frame | None:
        """The next frame from the server (its pings answered or not), None at the end of the connection."""
        async with asyncio.timeout(RECV_TIMEOUT):
            while True:
                self.pending.extend(e for e in self.protocol.events_received() if isinstance(e, Frame))
                if self.pending:
                    return self.pending.popleft()
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.protocol.receive_data(data)
                if self.answer_pings:
                    self._flush()  # the protocol answers pings by itself: sending its output sends the pongs
                else:
                    self.protocol.data_to_send()  # dropped: no pong leaves

    def close(self) -> None:
        self.writer.close()


async def test_a_peer_that_stops_answering_protocol_pings_is_dropped(
    pinging_server: RunningServer, team: Team
) -> None:
    raw = await RawSocket.open(pinging_server, team.engineer.token)
    try:
        assert (await raw.next_frame()).opcode == Opcode.TEXT  # type: ignore[union-attr]  # authenticated
        pings = 0
        while pings < 3:  # the next ping comes only after the last one was answered
            frame = await raw.next_frame()
            assert frame is not None and frame.opcode in (Opcode.PING, Opcode.TEXT), frame
            pings += frame.opcode == Opcode.PING
        raw.answer_pings = False
        frames = []
        while (frame := await raw.next_frame()) is not None:
            frames.append(frame)
        assert [f.opcode for f in frames] == [Opcode.PING, Opcode.CLOSE], frames  # the 4th ping, unanswered
        assert frames[-1].data[:2] == (1011).to_bytes(2), frames  # "keepalive ping timeout"
    finally:
        raw.close()
