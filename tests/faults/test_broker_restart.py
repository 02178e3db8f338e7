"""Redis (or NATS) dies under two `pitbox serve` instances and comes back: meanwhile each instance keeps
serving its own subscribers and ingest keeps being acknowledged; afterwards cross-instance delivery resumes
without restarting either instance."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pitbox.client import PitboxClient, Subscription
from tests.conftest import RunningServer, Team, make_settings, run_server
from tests.faults.conftest import (
    BrokerProcess,
    ServeProcess,
    SteadyIngest,
    create_session,
    eventually,
    run_until,
)
from tests.realtime.socket_client import expect, signed_in, subscribe


@pytest.fixture(params=["redis", "nats"])
def broker(request: pytest.FixtureRequest) -> Iterator[BrokerProcess]:
    """Our own broker server (never the machine's shared one), killed at the end if still up."""
    process = BrokerProcess(request.param)
    yield process
    process.kill()


async def _record_batches(live: Subscription, heard: set[int]) -> None:
    """Note the number of every telemetry batch heard (its first `t` is its number)."""
    while True:
        message = await live.receive()
        if message["data"].get("type") == "telemetry":
            heard.add(int(message["data"]["tStart"]))


def _heard_beyond(heard: set[int], index: int) -> bool:
    return any(n > index for n in heard)


async def test_instances_serve_their_own_subscribers_while_the_broker_is_down_and_reconnect_after(
    server: RunningServer, team: Team, tmp_path: Path, broker: BrokerProcess
) -> None:
    await broker.start()
    database_url = str(server.settings.database_url)
    a = ServeProcess(database_url, tmp_path / "a", **broker.setting)
    b = ServeProcess(database_url, tmp_path / "b", **broker.setting)
    try:
        await asyncio.gather(a.start(), b.start())
        driver = team.driver
        assert driver.driver_id is not None
        channel = f"telemetry:{driver.driver_id}"
        session_id = await create_session(b.url, driver.token, driver.driver_id)
        relay = SteadyIngest(b.url, driver.token, driver.driver_id, session_id, pause_s=0.05)
        heard_on_a: set[int] = set()
        heard_on_b: set[int] = set()
        async with (
            PitboxClient(a.url, token=team.engineer.token) as on_a,
            PitboxClient(b.url, token=team.manager.token) as on_b,
            on_a.subscribe([channel]) as live_a,
            on_b.subscribe([channel]) as live_b,
        ):
            listeners = [
                asyncio.create_task(_record_batches(live_a, heard_on_a)),
                asyncio.create_task(_record_batches(live_b, heard_on_b)),
            ]
            stop = asyncio.Event()

            async def drop_and_restore_the_broker() -> None:
                await eventually(lambda: bool(heard_on_a) and bool(heard_on_b), "delivery on both instances")
                broker.kill()
                killed_at = relay.next_index
                await eventually(
                    lambda: _heard_beyond(heard_on_b, killed_at),
                    "B's own subscriber hears B's telemetry while the broker is down",
                )
                await broker.start()
                restored_at = relay.next_index
                await eventually(
                    lambda: _heard_beyond(heard_on_a, restored_at) and _heard_beyond(heard_on_b, restored_at),
                    "A hears B's telemetry again after the broker came back",
                )

            try:
                await run_until(stop, [asyncio.create_task(relay.run(stop))], drop_and_restore_the_broker())
            finally:
                for task in listeners:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        assert a.running() and b.running()
    finally:
        a.stop()
        b.stop()
    print(
        f"\nFAULT {broker.kind} killed and restarted: batches acked={len(relay.acked)}, heard on B "
        f"{len(heard_on_b)}, on A {len(heard_on_a)}; answers={dict(relay.answers)}"
    )
    assert relay.unexpected == [], relay.unexpected
    assert set(relay.answers) <= {"201"}, relay.answers


async def test_history_channels_are_told_broker_gap_when_the_broker_drops(
    database_url: str, team: Team, tmp_path: Path, broker: BrokerProcess
) -> None:
    await broker.start()
    setting = "redis_url" if broker.kind == "redis" else "nats_url"
    async with run_server(
        make_settings(database_url, tmp_path, ingest_processes=0, **{setting: broker.url})
    ) as server:
        ai, telemetry = f"ai:{team.driver.driver_id}", f"telemetry:{team.driver.driver_id}"
        async with await signed_in(server, team.engineer.token) as ws:
            epoch = (await subscribe(ws, ai))["epoch"]
            assert (await subscribe(ws, telemetry))["type"] == "subscribed"
            broker.kill()
            # Unasked, on the history channel only (telemetry keeps no history to be caught up from).
            resync = await expect(ws, "resync")
            assert (resync["reason"], resync["channel"]) == ("broker_gap", ai), resync
            assert resync["epoch"] != epoch  # messages of the old numbering may be lost: a new one starts
            await broker.start()  # so the server's shutdown meets a broker, as after any outage
