"""Across instances: two servers on one Redis (or NATS) each deliver every message to their own subscribers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import (
    RunningServer,
    Team,
    World,
    assert_error,
    make_settings,
    nats_url,
    pitbox_cli,
    redis_url,
    run_server,
)
from tests.faults.conftest import eventually
from tests.realtime.socket_client import expect, signed_in, subscribe


@pytest.fixture(params=["nats", "redis"])
async def two_instances(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Two servers on the same database and the same broker (REDIS_URL / NATS_URL, or the default ports)."""
    setting, url = ("redis_url", redis_url()) if request.param == "redis" else ("nats_url", nats_url())
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


async def test_a_revocation_on_one_instance_reaches_the_other_ones_credential_cache(
    two_instances: tuple[RunningServer, RunningServer], team: Team
) -> None:
    a, b = two_instances
    async with httpx.AsyncClient(base_url=a.url) as on_a, httpx.AsyncClient(base_url=b.url) as on_b:
        created = await on_a.post(
            "/api/keys",
            json={"driverId": team.driver.driver_id, "scopes": ["telemetry:write"], "name": "relay"},
            headers=team.manager.headers,
        )
        assert created.status_code == 201, created.text
        key = {"X-API-Key": created.json()["key"]}
        assert (await on_b.get("/api/me", headers=key)).status_code == 200  # b now trusts it for 5 s
        heard = b.services.credentials.revocations_heard
        revoked = await on_a.delete(f"/api/keys/{created.json()['id']}", headers=team.manager.headers)
        assert revoked.status_code == 200, revoked.text
        await eventually(
            lambda: b.services.credentials.revocations_heard > heard, "b to hear of the revocation"
        )
        assert_error(await on_b.get("/api/me", headers=key), 401, "invalid_api_key")


async def test_internal_channels_cannot_be_subscribed_to(
    two_instances: tuple[RunningServer, RunningServer], team: Team
) -> None:
    a, _ = two_instances
    async with await signed_in(a, team.manager.token) as ws:
        answer = await subscribe(ws, "internal:revocations")
        assert answer["type"] == "error" and answer["code"] == "unknown_channel", answer


async def test_pitbox_users_disable_reaches_running_servers_through_the_broker(
    two_instances: tuple[RunningServer, RunningServer], world: World
) -> None:
    a, _ = two_instances
    user = await world.user("engineer")
    async with httpx.AsyncClient(base_url=a.url) as on_a:
        assert (await on_a.get("/api/me", headers=user.headers)).status_code == 200  # a now trusts it for 5 s
        heard = a.services.credentials.revocations_heard
        broker = (
            {"REDIS_URL": a.settings.redis_url} if a.settings.redis_url else {"NATS_URL": a.settings.nats_url}
        )
        disabled = await pitbox_cli(a, "users", "disable", user.email, env=broker)
        assert disabled.returncode == 0, disabled.stderr
        await eventually(
            lambda: a.services.credentials.revocations_heard > heard, "a to hear of the CLI's revocation"
        )
        assert_error(await on_a.get("/api/me", headers=user.headers), 401, "invalid_token")
