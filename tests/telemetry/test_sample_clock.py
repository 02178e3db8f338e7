"""The sample clock: `t`, else a `timestamp` (ISO 8601 or epoch ms), else the time the server stores the sample.

Samples without `t` are stored, read back in the order sent with a `t` in seconds since the session started,
and behave like any other (laps, CSV, live frames); a timestamp that is not a date, or one years away from
the session, is refused with nothing stored.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import RunningServer, Team, assert_error
from tests.realtime.socket_client import expect, next_frame, signed_in, subscribe
from tests.telemetry.conftest import as_rows, synthetic_laps
from tests.telemetry.test_ingest import stored

CEST = timezone(timedelta(hours=2))


async def started_session(client: httpx.AsyncClient, team: Team) -> tuple[str, datetime]:
    """A new session of the team's driver: its id and when it started (as the server says)."""
    body = {"driverId": team.driver.driver_id, "name": f"clock {uuid.uuid4().hex[:6]}"}
    response = await client.post("/api/sessions", json=body, headers=team.driver.headers)
    assert response.status_code == 201, response.text
    session = response.json()
    return session["id"], datetime.fromisoformat(session["startedAt"])


def iso(moment: datetime) -> str:
    """ISO 8601 with its offset, as a client writes it."""
    return moment.isoformat()


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds, as a JavaScript client's Date.now()."""
    return round(moment.timestamp() * 1000)


async def read_back(client: httpx.AsyncClient, team: Team, session_id: str) -> dict[str, list[Any]]:
    response = await client.get(f"/api/sessions/{session_id}/telemetry", headers=team.driver.headers)
    assert response.status_code == 200, response.text
    columns: dict[str, list[Any]] = response.json()["columns"]
    return columns


async def post(client: httpx.AsyncClient, team: Team, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/telemetry", json=body, headers=team.driver.headers)


async def test_a_sample_without_a_clock_gets_the_time_it_was_received(
    client: httpx.AsyncClient, team: Team
) -> None:
    session_id, started = await started_session(client, team)
    body = {"driverId": team.driver.driver_id, "sessionId": session_id, "data": {"speed": 120.5, "gear": 4}}
    sent_from = time.time()
    first = await post(client, team, body)
    second = await post(client, team, body)  # the same sample again later: a second sample, not a retry
    sent_until = time.time()
    assert first.status_code == second.status_code == 201, first.text
    assert first.json()["clock"] == second.json()["clock"] == "server"
    assert second.json()["duplicate"] is False
    columns = await read_back(client, team, session_id)
    assert columns["speed"] == [120.5, 120.5]
    t_first, t_second = columns["t"]
    since_start = started.timestamp()
    # The server's clock is this machine's: each t lies between the moments the test sent and got its answers.
    assert sent_from - since_start - 0.005 <= t_first <= t_second <= sent_until - since_start + 0.005


async def test_an_iso_timestamp_at_the_top_of_the_body_counts_from_the_session_start(
    client: httpx.AsyncClient, team: Team
) -> None:
    session_id, started = await started_session(client, team)
    body = {
        "sessionId": session_id,
        "driverId": team.driver.driver_id,
        "timestamp": iso(
            (started + timedelta(seconds=12.25)).astimezone(CEST)
        ),  # another offset, same moment
        "data": {"speed": 201.4, "rpm": 7500},
    }
    response = await post(client, team, body)
    assert response.status_code == 201, response.text
    assert response.json()["clock"] == "timestamp"
    assert response.json()["tStart"] == pytest.approx(12.25, abs=1e-6)
    assert (await read_back(client, team, session_id))["t"] == [pytest.approx(12.25, abs=1e-6)]
    retried = await post(client, team, body)  # the same body with the same timestamp: a retry, stored once
    assert retried.status_code == 200 and retried.json()["duplicate"] is True
    assert retried.json()["clock"] == "timestamp"


async def test_epoch_millisecond_timestamps_on_samples_and_columns(
    client: httpx.AsyncClient, team: Team
) -> None:
    session_id, started = await started_session(client, team)
    stamps = [epoch_ms(started + timedelta(seconds=s)) for s in (1.0, 1.5, 2.0)]
    rows = {
        "driverId": team.driver.driver_id,
        "sessionId": session_id,
        "samples": [{"timestamp": ms, "speed": 100 + i} for i, ms in enumerate(stamps)],
    }
    columns_body = {
        "driverId": team.driver.driver_id,
        "sessionId": session_id,
        "seq": 2,
        "columns": {"timestamp": [epoch_ms(started + timedelta(seconds=3.0))], "speed": [110]},
    }
    assert (await post(client, team, rows)).json()["clock"] == "timestamp"
    assert (await post(client, team, columns_body)).json()["clock"] == "timestamp"
    columns = await read_back(client, team, session_id)
    assert columns["speed"] == [100, 101, 102, 110]
    assert "timestamp" not in columns  # the clock, not a channel
    # Whole milliseconds on both sides: exact to the millisecond.
    expected = [
        (ms - started.timestamp() * 1000) / 1000 for ms in [*stamps, columns_body["columns"]["timestamp"][0]]
    ]
    assert columns["t"] == pytest.approx(expected, abs=1e-6)


async def test_a_batch_mixing_clocks_is_stored_in_the_order_sent(
    client: httpx.AsyncClient, team: Team
) -> None:
    session_id, started = await started_session(client, team)
    three_s = epoch_ms(started + timedelta(seconds=3.0))
    samples = [
        {"t": 1.0, "speed": 101},
        {"speed": 102},  # no clock, between t = 1 and the next sample's 2 s
        {"timestamp": iso(started + timedelta(seconds=2.0)), "speed": 103},
        {"timestamp": three_s, "speed": 104},
        {"speed": 105},  # no clock: when it was received, but not before 3 s
    ]
    body = {"driverId": team.driver.driver_id, "sessionId": session_id, "samples": samples}
    response = await post(client, team, body)
    received_by = time.time() - started.timestamp()
    assert response.status_code == 201, response.text
    assert response.json()["clock"] == "mixed"
    columns = await read_back(client, team, session_id)
    assert columns["speed"] == [101, 102, 103, 104, 105]
    t = columns["t"]
    third = three_s / 1000 - started.timestamp()  # 3 s give or take the milliseconds' rounding
    assert t[0] == 1.0 and 1.0 <= t[1] <= 2.0
    assert t[2:4] == pytest.approx([2.0, third], abs=1e-6)
    assert third - 1e-6 <= t[4] <= max(third, received_by + 0.005)


async def test_server_stamped_samples_never_go_before_the_sessions_last_sample(
    client: httpx.AsyncClient, team: Team
) -> None:
    session_id, _ = await started_session(client, team)
    ahead = {"driverId": team.driver.driver_id, "sessionId": session_id, "data": {"t": 3600.0, "speed": 1}}
    assert (await post(client, team, ahead)).status_code == 201
    late = await post(client, team, {**ahead, "data": {"speed": 2}})
    assert late.json()["clock"] == "server" and late.json()["tStart"] == 3600.0
    assert (await read_back(client, team, session_id))["t"] == [3600.0, 3600.0]


async def test_laps_are_detected_from_server_stamped_samples(client: httpx.AsyncClient, team: Team) -> None:
    session_id, _ = await started_session(client, team)
    # A car lapping (lap counter and lap fraction), sent without a clock, a third of a lap a batch.
    columns = synthetic_laps(laps=3, lap_time=4.0, hz=30.0)
    rows = [{name: value for name, value in row.items() if name != "t"} for row in as_rows(columns)]
    for seq, start in enumerate(range(0, len(rows), 40)):
        body = {
            "driverId": team.driver.driver_id,
            "sessionId": session_id,
            "seq": seq,
            "samples": rows[start : start + 40],
        }
        response = await post(client, team, body)
        assert response.status_code == 201 and response.json()["clock"] == "server", response.text
    laps = (await client.get(f"/api/sessions/{session_id}/laps", headers=team.driver.headers)).json()
    t = (await read_back(client, team, session_id))["t"]
    pct, counter = columns["lapDistPct"], columns["lap"]
    wraps = [i for i in range(1, len(pct)) if pct[i] < pct[i - 1]]
    # Each lap ends at its line crossing, interpolated on the server's times of the samples either side.
    crossings = [
        t[i - 1] + (1.0 - pct[i - 1]) / (pct[i] + 1.0 - pct[i - 1]) * (t[i] - t[i - 1]) for i in wraps
    ]
    # A lap that began and ended within one batch has no duration on the server's clock: not a lap.
    starts = [t[0], *crossings[:-1]]
    driven = [k for k in range(len(wraps)) if crossings[k] > starts[k]]
    assert len(driven) >= len(wraps) - 1
    assert [lap["lap"] for lap in laps] == [int(counter[wraps[k] - 1]) for k in driven]
    assert [lap["tEnd"] for lap in laps] == pytest.approx([crossings[k] for k in driven], abs=1e-9)


async def test_live_frames_and_csv_carry_the_given_time(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id, started = await started_session(client, team)
    ws = await signed_in(server, team.engineer.token)
    try:
        assert (await subscribe(ws, f"session:{session_id}"))["type"] == "subscribed"
        body = {
            "driverId": team.driver.driver_id,
            "sessionId": session_id,
            "timestamp": iso(started + timedelta(seconds=5)),
            "data": {"speed": 88.0},
        }
        assert (await post(client, team, body)).status_code == 201
        frame = await expect(ws, "message")
    finally:
        await ws.close()
    assert frame["data"]["clock"] == "timestamp"
    assert frame["data"]["columns"]["t"] == [pytest.approx(5.0, abs=1e-6)]
    csv = await client.get(f"/api/sessions/{session_id}/telemetry?format=csv", headers=team.driver.headers)
    header, row = csv.text.strip().splitlines()
    assert header == "t,speed" and float(row.split(",")[0]) == pytest.approx(5.0, abs=1e-6)


async def test_websocket_ingest_follows_the_same_clock(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    session_id, started = await started_session(client, team)
    ws = await signed_in(server, team.driver.token)
    try:
        acks = []
        for request_id, extra in [
            ("no-clock", {}),
            ("stamped", {"timestamp": iso(started + timedelta(hours=1))}),
            ("too-far", {"timestamp": iso(started - timedelta(days=400))}),
        ]:
            frame = {
                "type": "telemetry",
                "id": request_id,
                "driverId": team.driver.driver_id,
                "sessionId": session_id,
                "data": {"speed": 150.0},
                **extra,
            }
            await ws.send(orjson.dumps(frame).decode())
            acks.append(await next_frame(ws))
    finally:
        await ws.close()
    assert [(ack["type"], ack.get("clock")) for ack in acks[:2]] == [("ack", "server"), ("ack", "timestamp")]
    assert acks[1]["tStart"] == pytest.approx(3600.0, abs=1e-6)
    assert acks[2]["type"] == "error" and acks[2]["code"] == "timestamp_out_of_range"
    assert (await read_back(client, team, session_id))["speed"] == [150.0, 150.0]


BAD_CLOCKS = [
    ({"timestamp": "yesterday"}, "timestamp", "invalid_timestamp"),
    ({"timestamp": True}, "timestamp", "invalid_timestamp"),
    ({"timestamp": {"ms": 1}}, "timestamp", "invalid_timestamp"),
    ({"data": {"speed": 1, "timestamp": "2023-13-45T00:00:00Z"}}, "data.timestamp", "invalid_timestamp"),
    (
        {"timestamp": "2019-07-17T12:34:56Z"},
        "timestamp",
        "timestamp_out_of_range",
    ),  # years before the session
    ({"timestamp": 1_900_000_000}, "timestamp", "timestamp_out_of_range"),  # epoch seconds sent as ms: 1970
    ({"timestamp": 1e300}, "timestamp", "invalid_timestamp"),  # no date: beyond the year 9999
    ({"data": {"speed": 1, "timestamp": -1e20}}, "data.timestamp", "invalid_timestamp"),
    (
        {"data": {"speed": 1, "timestamp": "2999-01-01T00:00:00+00:00"}},
        "data.timestamp",
        "timestamp_out_of_range",
    ),
]


@pytest.mark.parametrize(("change", "field", "code"), BAD_CLOCKS)
async def test_a_timestamp_that_is_no_date_or_years_away_is_refused(
    client: httpx.AsyncClient,
    server: RunningServer,
    team: Team,
    change: dict[str, Any],
    field: str,
    code: str,
) -> None:
    session_id, _ = await started_session(client, team)
    body = {"driverId": team.driver.driver_id, "sessionId": session_id, "data": {"speed": 1.0}, **change}
    error = assert_error(await post(client, team, body), 422, code)
    assert error["details"][0]["field"] == field, error
    assert await stored(server, session_id) == (0, 0)


@pytest.mark.parametrize("stamp", [1e300, -1e300, 1e20, 253_402_300_799_999, "9999-12-31T23:59:59Z"])
async def test_a_timestamp_far_from_the_session_is_refused_with_a_message_of_sane_length(
    client: httpx.AsyncClient, team: Team, stamp: float | str
) -> None:
    session_id, _ = await started_session(client, team)
    body = {"driverId": team.driver.driver_id, "sessionId": session_id, "data": {"speed": 1.0}}
    error = assert_error(await post(client, team, {**body, "timestamp": stamp}), 422)
    assert error["code"] in ("invalid_timestamp", "timestamp_out_of_range"), error
    assert len(error["message"]) < 300 and len(str(error["details"])) < 400, error


@pytest.mark.parametrize(
    "raw",
    [b"[]", b'"speed"', b"42", b"null", b'{"driverId": "D", "sessionId": "S", "data": [1, 2]}'],
)
async def test_a_body_of_the_wrong_type_is_refused(
    client: httpx.AsyncClient, server: RunningServer, team: Team, raw: bytes
) -> None:
    session_id, _ = await started_session(client, team)
    assert team.driver.driver_id is not None
    raw = raw.replace(b'"D"', f'"{team.driver.driver_id}"'.encode()).replace(
        b'"S"', f'"{session_id}"'.encode()
    )
    response = await client.post(
        "/api/telemetry", content=raw, headers={**team.driver.headers, "Content-Type": "application/json"}
    )
    assert_error(response, 422)
    assert await stored(server, session_id) == (0, 0)
