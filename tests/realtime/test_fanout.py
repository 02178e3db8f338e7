"""Fan-out: a slow consumer is cut without hurting a fast one, coalesced rates, catch-up after reconnect,
graceful shutdown, and no token in the server's log lines."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from pitbox.logs import redact_text
from tests.conftest import RunningServer, Team, make_settings, run_server
from tests.faults.conftest import eventually
from tests.realtime.socket_client import (
    expect,
    frames_until_closed,
    next_frame,
    open_socket,
    signed_in,
    small_window_socket,
    subscribe,
)
from tests.telemetry.conftest import synthetic_laps

#: Frames a socket may fall behind before it is cut, and messages a history channel keeps (docs/websocket.md).
QUEUE_FRAMES = 1024
HISTORY_MESSAGES = 1000


async def test_slow_consumer_is_cut_while_a_fast_one_receives_every_message_in_order(
    server: RunningServer, team: Team
) -> None:
    hub = server.services.hub
    channel = f"telemetry:{team.driver.driver_id}"
    payload = base64.b64encode(os.urandom(24_000)).decode()  # incompressible, should deflate be negotiated
    async with (
        await signed_in(server, team.engineer.token) as fast,
        await signed_in(
            server, team.manager.token, max_queue=1, sock=await small_window_socket(server)
        ) as slow,
    ):
        assert (await subscribe(fast, channel))["type"] == "subscribed"
        assert (await subscribe(slow, channel))["type"] == "subscribed"
        # The slow client reads nothing: publish until the hub gives up on it (buffers on the way fill first).
        received: list[int] = []
        for n in range(QUEUE_FRAMES + 2000):
            hub.publish(channel, {"n": n, "pad": payload})
            received.append((await expect(fast, "message"))["data"]["n"])
            if hub.subscriber_count(channel) == 1:
                break
        assert hub.subscriber_count(channel) == 1, "the slow consumer was never cut"
        hub.publish(channel, {"n": len(received), "pad": ""})
        received.append((await expect(fast, "message"))["data"]["n"])
        assert received == list(range(len(received)))

        # It was cut past the queue's bound, not before (the kernel's and the transport's buffers come on top).
        assert len(received) > QUEUE_FRAMES, len(received)
        frames = await frames_until_closed(slow)
        heard = [f["data"]["n"] for f in frames if f["type"] == "message"]
        assert heard == list(range(len(heard))) and len(heard) < len(received)
        assert frames[-1]["code"] == "too_slow"
        assert slow.close_code == 4008


async def test_a_client_that_stops_reading_for_a_while_then_gets_every_message_in_order(
    server: RunningServer, team: Team
) -> None:
    """Frames go straight to the socket while it keeps up, queue while its transport is full, and leave in
    publishing order when it drains: no gap, no repeat, sequence numbers consecutive. (Its backlog stays far
    below the queue's bound: publishing stops as soon as frames queue, then goes on at a quarter of its reads.)"""
    hub = server.services.hub
    channel = f"telemetry:{team.driver.driver_id}"
    payload = base64.b64encode(os.urandom(24_000)).decode()
    async with (
        await signed_in(server, team.engineer.token) as fast,
        await signed_in(
            server, team.manager.token, max_queue=1, sock=await small_window_socket(server)
        ) as paused,
    ):
        first_seq = (await subscribe(fast, channel))["seq"] + 1
        assert (await subscribe(paused, channel))["type"] == "subscribed"
        # The server config lets fan-out write to the transports: every socket on it (ours among them) does.
        stats = hub.stats()
        assert int(stats["connections"]) >= 2 and stats["direct_sockets"] == stats["connections"], stats
        published = 0
        # `paused` reads nothing now: publish until its frames back up in the hub (kernel buffers fill first).
        while hub.stats()["queued_frames"] == 0 and published < 3000:
            hub.publish(channel, {"n": published, "pad": payload})
            assert (await expect(fast, "message"))["data"]["n"] == published
            published += 1
        assert int(hub.stats()["queued_frames"]) > 0, "the paused client's frames never queued"
        # It reads again; publishing goes on while its backlog drains.
        heard: list[dict[str, Any]] = []
        while len(heard) < published:
            heard.append(await expect(paused, "message"))
            if len(heard) % 4 == 0 and published < 3100:
                hub.publish(channel, {"n": published, "pad": payload})
                assert (await expect(fast, "message"))["data"]["n"] == published
                published += 1
        assert [m["data"]["n"] for m in heard] == list(range(published))
        assert [m["seq"] for m in heard] == list(range(first_seq, first_seq + published))
        assert hub.stats()["queued_frames"] == 0 and hub.subscriber_count(channel) == 2
        hub.publish(channel, {"n": published, "pad": ""})
        assert (await expect(paused, "message"))["data"]["n"] == published
        assert (await expect(fast, "message"))["data"]["n"] == published


async def test_max_rate_subscriber_gets_the_latest_message_coalesced(
    server: RunningServer, team: Team
) -> None:
    channel = f"telemetry:{team.driver.driver_id}"
    async with (
        await signed_in(server, team.manager.token) as dashboard,
        await signed_in(server, team.engineer.token) as full,
    ):
        assert (await subscribe(dashboard, channel, maxRate=5))["maxRate"] == 5
        assert (await subscribe(full, channel))["type"] == "subscribed"
        for n in range(50):  # one burst, far above 5/s
            server.services.hub.publish(channel, {"n": n})
        assert [(await expect(full, "message"))["data"]["n"] for _ in range(50)] == list(range(50))
        heard: list[int] = []
        while not heard or heard[-1] != 49:
            heard.append((await expect(dashboard, "message"))["data"]["n"])
        assert heard[0] == 0 and len(heard) < 50 and heard == sorted(heard)


async def test_reconnect_with_last_seq_gets_every_missed_message(server: RunningServer, team: Team) -> None:
    channel = f"ai:{team.driver.driver_id}"
    hub = server.services.hub
    async with await signed_in(server, team.driver.token) as ws:
        answer = await subscribe(ws, channel)
        epoch = answer["epoch"]
        hub.publish(channel, {"tip": "brake later"})
        last_seq = (await expect(ws, "message"))["seq"]
    for tip in ("turn in earlier", "use more kerb", "short shift"):
        hub.publish(channel, {"tip": tip})
    async with await signed_in(server, team.driver.token) as ws:
        answer = await subscribe(ws, channel, lastSeq=last_seq, epoch=epoch)
        assert answer["recovered"] is True and answer["seq"] == last_seq + 3
        missed = [await expect(ws, "message") for _ in range(3)]
        assert [m["data"]["tip"] for m in missed] == ["turn in earlier", "use more kerb", "short shift"]
        assert [m["seq"] for m in missed] == [last_seq + 1, last_seq + 2, last_seq + 3]
        hub.publish(channel, {"tip": "live again"})
        assert (await expect(ws, "message"))["seq"] == last_seq + 4


async def test_reconnect_to_a_session_channel_gets_what_a_live_subscriber_heard(
    server: RunningServer, team: Team
) -> None:
    driver_id = str(team.driver.driver_id)
    async with httpx.AsyncClient(base_url=server.url) as http:
        created = await http.post(
            "/api/sessions", json={"driverId": driver_id, "name": "catch-up"}, headers=team.driver.headers
        )
        session_id = created.json()["id"]
        channel = f"session:{session_id}"
        async with await signed_in(server, team.manager.token) as live:
            assert (await subscribe(live, channel))["type"] == "subscribed"
            async with await signed_in(server, team.engineer.token) as leaving:
                answer = await subscribe(leaving, channel)
                epoch, last_seq = answer["epoch"], answer["seq"]
            # `leaving` is gone: a lap is driven (telemetry, then the lap completed) and the session ends.
            columns = synthetic_laps(laps=1, lap_time=10.0)
            body = {"driverId": driver_id, "sessionId": session_id, "batchId": "lap-1", "columns": columns}
            sent = await http.post("/api/telemetry", json=body, headers=team.driver.headers)
            assert sent.status_code == 201, sent.text
            ended = await http.post(f"/api/sessions/{session_id}/end", headers=team.driver.headers)
            assert ended.json()["status"] == "ended", ended.text
            heard = []
            while not heard or heard[-1]["data"]["type"] != "session_ended":
                heard.append(await expect(live, "message"))
    assert {"telemetry", "lap_completed"} <= {m["data"]["type"] for m in heard}
    async with await signed_in(server, team.engineer.token) as back:
        answer = await subscribe(back, channel, lastSeq=last_seq, epoch=epoch)
        assert answer["recovered"] is True and answer["seq"] == heard[-1]["seq"]
        missed = [await expect(back, "message") for _ in heard]
    assert missed == heard


@pytest.fixture
async def short_history_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """A server whose history channels keep messages 0.5 s (WS_HISTORY_S), trimmed every 0.1 s (half of
    WS_KEEPALIVE_S)."""
    settings = make_settings(
        database_url,
        tmp_path_factory.mktemp("history"),
        ws_history_s=0.5,
        ws_keepalive_s=0.2,
        ingest_processes=0,
    )
    async with run_server(settings) as running:
        yield running


async def test_catch_up_past_the_history_age_bound_says_history_gap(
    short_history_server: RunningServer, team: Team
) -> None:
    server, channel = short_history_server, f"ai:{team.driver.driver_id}"
    async with (
        await signed_in(server, team.manager.token) as staying,  # keeps the channel (and its epoch) alive
        await signed_in(server, team.driver.token) as ws,
    ):
        assert (await subscribe(staying, channel))["type"] == "subscribed"
        epoch = (await subscribe(ws, channel))["epoch"]
        server.services.hub.publish(channel, {"tip": "brake later"})
        last_seq = (await expect(ws, "message"))["seq"] - 1  # as if that message had been missed
        await ws.send(orjson.dumps({"type": "unsubscribe", "channel": channel}).decode())
        assert (await next_frame(ws))["type"] == "unsubscribed"
        await eventually(lambda: server.services.hub.stats()["history_bytes"] == 0, "the message to age out")
        answer = await subscribe(ws, channel, lastSeq=last_seq, epoch=epoch)
        assert answer["recovered"] is False and answer["epoch"] == epoch
        assert (await expect(ws, "resync"))["reason"] == "history_gap"


async def test_catch_up_that_cannot_be_honoured_says_resync(server: RunningServer, team: Team) -> None:
    channel = f"ai:{team.driver.driver_id}"
    async with await signed_in(server, team.driver.token) as ws:
        first = await subscribe(ws, channel)
        epoch, base = first["epoch"], first["seq"]
        await ws.send(orjson.dumps({"type": "unsubscribe", "channel": channel}).decode())
        assert (await next_frame(ws))["type"] == "unsubscribed"
        for n in range(HISTORY_MESSAGES + 20):  # more than a channel's history holds: the first 20 are gone
            server.services.hub.publish(channel, {"n": n})
        recovered = await subscribe(ws, channel, lastSeq=base + 20, epoch=epoch)  # the oldest held: base + 21
        assert recovered["recovered"] is True
        assert [(await expect(ws, "message"))["data"]["n"] for _ in range(HISTORY_MESSAGES)] == list(
            range(20, HISTORY_MESSAGES + 20)
        )
        cases = [
            ({"lastSeq": base + 19, "epoch": epoch}, "history_gap"),
            ({"lastSeq": 3, "epoch": "someone-else"}, "epoch_changed"),
            ({"lastSeq": base + 10_000, "epoch": epoch}, "unknown_position"),
        ]
        for fields, reason in cases:
            answer = await subscribe(ws, channel, **fields)
            assert answer["type"] == "subscribed" and answer["recovered"] is False
            resync = await expect(ws, "resync")
            assert resync["reason"] == reason and resync["channel"] == channel
        telemetry = f"telemetry:{team.driver.driver_id}"
        assert (await subscribe(ws, telemetry, lastSeq=0, epoch=epoch))["recovered"] is False
        assert (await expect(ws, "resync"))["reason"] == "no_history"


async def test_shutdown_flushes_then_closes_1001(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, team: Team
) -> None:
    settings = make_settings(database_url, tmp_path_factory.mktemp("data"))
    channel = f"ai:{team.driver.driver_id}"
    async with run_server(settings) as server:
        ws = await signed_in(server, team.driver.token)
        assert (await subscribe(ws, channel))["type"] == "subscribed"
        for n in range(5):
            server.services.hub.publish(channel, {"n": n})
    frames = await frames_until_closed(ws)
    assert [f["data"]["n"] for f in frames if f["type"] == "message"] == [0, 1, 2, 3, 4]
    assert ws.close_code == 1001


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_no_log_line_holds_the_token(server: RunningServer, team: Team) -> None:
    capture = _Records()
    root = logging.getLogger()
    uvicorn_log = logging.getLogger("uvicorn.error")
    old_level = uvicorn_log.level
    root.addHandler(capture)
    uvicorn_log.setLevel(logging.DEBUG)
    try:
        async with await signed_in(server, team.driver.token):
            pass
        async with await open_socket(server, team.driver.token + "tampered") as ws:
            await frames_until_closed(ws)
    finally:
        root.removeHandler(capture)
        uvicorn_log.setLevel(old_level)
    secret = team.driver.token[:40]
    lines = [(r.levelno, r.getMessage()) for r in capture.records]
    assert any("WebSocket /ws" in text for level, text in lines if level == logging.INFO), lines
    # At INFO and above the token never reaches a record: /ws takes it out of the query before accepting.
    assert not [text for level, text in lines if level >= logging.INFO and secret in text]
    # At DEBUG the websockets library logs the raw request line; the log pipeline redacts `token=` there.
    assert not [text for _, text in lines if secret in redact_text(text)]
