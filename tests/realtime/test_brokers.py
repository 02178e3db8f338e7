"""Across instances: two servers on one Redis (or NATS) each deliver every message to their own subscribers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from tests.conftest import RunningServer, Team, make_settings, run_server
from tests.realtime.socket_client import expect, signed_in, subscribe

BROKERS = {
    "redis": ("redis_url", "redis://127.0.0.1:6379/0", 6379),
    "nats": ("nats_url", "nats://127.0.0.1:4222", 4222),
}


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(params=sorted(BROKERS))
async def two_instances(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Two servers on the same database and the same broker."""
    setting, url, port = BROKERS[request.param]
    if not _answers(port):
        reason = (
            f"{request.param} does not answer on 127.0.0.1:{port}; start it to run the cross-instance tests"
        )
        print(reason)
        pytest.skip(reason)
    first = make_settings(database_url, tmp_path_factory.mktemp("a"), **{setting: url})
    second = make_settings(database_url, tmp_path_factory.mktemp("b"), **{setting: url})
    async with run_server(first) as a, run_server(second) as b:
        assert a.services.hub.broker.name == b.services.hub.broker.name == request.param
        yield a, b


async def test_each_instance_delivers_what_any_instance_publishes(
    two_instances: tuple[RunningServer, RunningServer], team: Team
) -> None:
    a, b = two_instances
    channel = f"telemetry:{team.driver.driver_id}"
    async with (
        await signed_in(a, team.engineer.token) as on_a,
        await signed_in(b, team.manager.token) as on_b,
    ):
        assert (await subscribe(on_a, channel))["type"] == "subscribed"
        assert (await subscribe(on_b, channel))["type"] == "subscribed"
        a.services.hub.publish(channel, {"from": "a", "n": 1})
        b.services.hub.publish(channel, {"from": "b", "n": 2})
        a.services.hub.publish(channel, {"from": "a", "n": 3})
        heard_a = [(await expect(on_a, "message"))["data"] for _ in range(3)]
        heard_b = [(await expect(on_b, "message"))["data"] for _ in range(3)]
        # Each publisher's own order holds everywhere, and both instances hear one and the same order.
        assert [m["n"] for m in heard_a if m["from"] == "a"] == [1, 3]
        assert heard_a == heard_b
        assert sorted(m["n"] for m in heard_a) == [1, 2, 3]


async def test_catch_up_on_another_instance_is_refused_plainly(
    two_instances: tuple[RunningServer, RunningServer], team: Team
) -> None:
    a, b = two_instances
    channel = f"ai:{team.driver.driver_id}"
    async with await signed_in(a, team.driver.token) as on_a:
        epoch = (await subscribe(on_a, channel))["epoch"]
        a.services.hub.publish(channel, {"tip": "brake later"})
        last_seq = (await expect(on_a, "message"))["seq"]
    async with await signed_in(b, team.driver.token) as on_b:
        answer = await subscribe(on_b, channel, lastSeq=last_seq, epoch=epoch)
        assert answer["recovered"] is False
        assert (await expect(on_b, "resync"))["reason"] == "epoch_changed"
