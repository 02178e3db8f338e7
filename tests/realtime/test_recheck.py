"""Open sockets are re-checked every WS_RECHECK_S: a revoked key, a disabled user or withdrawn access ends the
stream on every instance, a database outage does not, and WS_RECHECK_S=0 turns the re-checks off."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pgserver
import pytest

from pitbox.config import Settings
from tests.conftest import RunningServer, Team, World, make_settings, run_server
from tests.faults.conftest import eventually
from tests.realtime.socket_client import (
    expect,
    frames_until_closed,
    next_frame,
    signed_in,
    subscribe,
)

RECHECK_S = 0.2


def recheck_settings(database_url: str, data_dir: Path, recheck_s: float) -> Settings:
    """Settings for an extra server that re-checks its sockets every `recheck_s` and runs no background work."""
    return make_settings(
        database_url,
        data_dir,
        ws_recheck_s=recheck_s,
        ingest_processes=0,
        live_coaching=False,
        compaction_interval_s=0,
    )


@pytest.fixture(scope="module")
async def rechecking(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """A second instance on the shared database whose sockets are re-checked every 0.2 s."""
    settings = recheck_settings(database_url, tmp_path_factory.mktemp("rechecking"), RECHECK_S)
    async with run_server(settings) as running:
        yield running


async def relay_key(server: RunningServer, team: Team, scopes: list[str]) -> dict[str, str]:
    """A key for the team's driver, created by the team's manager over HTTP: its `id` and `key`."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post(
            "/api/keys",
            json={"driverId": team.driver.driver_id, "scopes": scopes, "name": "relay"},
            headers=team.manager.headers,
        )
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def revoke(server: RunningServer, team: Team, key_id: str) -> None:
    """The team's manager revokes a key over HTTP."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.delete(f"/api/keys/{key_id}", headers=team.manager.headers)
    assert response.status_code == 200, response.text


async def test_revoking_an_api_key_on_another_instance_closes_its_socket_with_invalid_api_key(
    rechecking: RunningServer, server: RunningServer, team: Team
) -> None:
    key = await relay_key(server, team, ["telemetry:read"])
    async with await signed_in(rechecking, key["key"]) as ws:
        assert (await subscribe(ws, f"telemetry:{team.driver.driver_id}"))["type"] == "subscribed"
        await revoke(server, team, key["id"])  # the other instance: this one still trusts its cache for 5 s
        frames = await frames_until_closed(ws)
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "invalid_api_key", frames
        assert ws.close_code == 4401


async def test_a_disabled_users_socket_is_closed_with_invalid_token(
    rechecking: RunningServer, team: Team
) -> None:
    async with await signed_in(rechecking, team.engineer.token) as ws:
        assert (await subscribe(ws, f"telemetry:{team.driver.driver_id}"))["type"] == "subscribed"
        # Straight in the database, behind every instance's back (no announcement: the re-check finds it).
        await rechecking.services.database.pool.execute(
            "UPDATE users SET disabled = true WHERE id = $1", uuid.UUID(team.engineer.id)
        )
        frames = await frames_until_closed(ws)
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "invalid_token", frames
        assert ws.close_code == 4401


async def test_signing_out_everywhere_closes_the_users_sockets_with_token_revoked(
    rechecking: RunningServer, server: RunningServer, team: Team
) -> None:
    async with await signed_in(rechecking, team.engineer.token) as ws:
        assert (await subscribe(ws, f"telemetry:{team.driver.driver_id}"))["type"] == "subscribed"
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:  # the other instance
            response = await http.post("/api/auth/logout-all", headers=team.engineer.headers)
        assert response.status_code == 204, response.text
        frames = await frames_until_closed(ws)
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "token_revoked", frames
        assert ws.close_code == 4401


async def test_a_member_removed_from_a_team_loses_its_drivers_channel_and_keeps_the_socket(
    rechecking: RunningServer, server: RunningServer, team: Team, other_team: Team
) -> None:
    engineer = team.engineer
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        invited = await http.post(
            f"/api/teams/{other_team.id}/members",
            json={"userId": engineer.id, "role": "engineer"},
            headers=other_team.manager.headers,
        )
        assert invited.status_code == 202, invited.text  # a member of another team joins by accepting
        joined = await http.post(
            f"/api/me/invitations/{invited.json()['id']}/accept", headers=engineer.headers
        )
        assert joined.status_code == 200, joined.text
        lost = f"telemetry:{team.driver.driver_id}"
        kept = f"telemetry:{other_team.driver.driver_id}"
        async with await signed_in(rechecking, engineer.token) as ws:
            assert (await subscribe(ws, lost))["type"] == "subscribed"
            assert (await subscribe(ws, kept))["type"] == "subscribed"

            removed = await http.delete(
                f"/api/teams/{team.id}/members/{engineer.id}", headers=team.manager.headers
            )
            assert removed.status_code == 204, removed.text
            revoked = await expect(ws, "error")
            assert revoked["code"] == "subscription_revoked" and revoked["channel"] == lost, revoked

            rechecking.services.hub.publish(lost, {"speed": 1.0})
            rechecking.services.hub.publish(kept, {"speed": 2.0})
            message = await expect(ws, "message")
            assert message["channel"] == kept and message["data"] == {"speed": 2.0}
            await ws.send('{"type":"ping","id":"still-open"}')
            assert await next_frame(ws) == {"type": "pong", "id": "still-open"}


async def test_a_socket_whose_access_holds_keeps_streaming_across_rechecks(
    rechecking: RunningServer, team: Team
) -> None:
    hub = rechecking.services.hub
    channel = f"telemetry:{team.driver.driver_id}"
    async with await signed_in(rechecking, team.engineer.token) as ws:
        assert (await subscribe(ws, channel))["type"] == "subscribed"
        await eventually(lambda: hub.stats()["connections"] == 1, "earlier tests' sockets to be gone")
        start = hub.counters["rechecks_total"]
        await eventually(lambda: hub.counters["rechecks_total"] >= start + 5, "five re-checks of this socket")
        hub.publish(channel, {"lap": 7})
        message = await expect(ws, "message")
        assert message["channel"] == channel and message["data"] == {"lap": 7}
        assert hub.counters["recheck_failures_total"] == 0


async def test_ws_recheck_s_0_turns_the_rechecks_off(
    rechecking: RunningServer, database_url: str, tmp_path: Path, team: Team
) -> None:
    key = await relay_key(rechecking, team, ["telemetry:read"])
    channel = f"telemetry:{team.driver.driver_id}"
    settings = recheck_settings(database_url, tmp_path / "data", 0)
    async with (
        run_server(settings) as unchecked,
        await signed_in(unchecked, key["key"]) as kept,
        await signed_in(rechecking, key["key"]) as cut,
    ):
        assert (await subscribe(kept, channel))["type"] == "subscribed"
        assert (await subscribe(cut, channel))["type"] == "subscribed"
        await revoke(rechecking, team, key["id"])
        assert (await frames_until_closed(cut))[-1][
            "code"
        ] == "invalid_api_key"  # re-checks did run meanwhile

        unchecked.services.hub.publish(channel, {"lap": 8})
        assert (await expect(kept, "message"))["data"] == {"lap": 8}
        counters = unchecked.services.hub.counters
        assert counters["rechecks_total"] == counters["recheck_failures_total"] == 0


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_database_outage_keeps_the_socket_and_its_subscriptions(tmp_path: Path, pg_dir: Path) -> None:
    database = pgserver.get_server(pg_dir, cleanup_mode="stop")
    try:
        settings = recheck_settings(database.get_uri(), tmp_path / "data", RECHECK_S)
        async with run_server(settings) as server:
            team = await World(server.services).team()
            hub = server.services.hub
            channel = f"telemetry:{team.driver.driver_id}"
            async with await signed_in(server, team.engineer.token) as ws:
                assert (await subscribe(ws, channel))["type"] == "subscribed"
                database.cleanup()  # stops PostgreSQL underneath the running server
                failures = hub.counters["recheck_failures_total"]
                await eventually(
                    lambda: hub.counters["recheck_failures_total"] >= failures + 3,
                    "three re-checks that could not reach the database",
                )
                hub.publish(channel, {"lap": 9})
                assert (await expect(ws, "message"))["data"] == {"lap": 9}
                assert (
                    hub.counters["recheck_sign_outs_total"]
                    == hub.counters["subscriptions_revoked_total"]
                    == 0
                )
    finally:
        database.cleanup()
