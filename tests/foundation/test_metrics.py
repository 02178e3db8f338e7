"""/metrics: Prometheus text with request counts by route template, open to internal networks only."""

from __future__ import annotations

import httpx

from tests.conftest import Actor, RunningServer, World, assert_error, make_settings, run_server


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient, admin: Actor) -> None:
    await client.get("/api/teams/00000000-0000-0000-0000-000000000000", headers=admin.headers)
    text = (await client.get("/metrics")).text
    assert 'pitbox_http_requests_total{method="GET",route="/api/teams/{team_id}",status="404"}' in text
    assert "00000000-0000" not in text
    assert "pitbox_db_pool_size" in text


async def test_metrics_answer_404_to_public_addresses_and_200_to_internal_ones(server: RunningServer) -> None:
    # The peer address as a reverse proxy on loopback reports it (TRUSTED_PROXIES=127.0.0.1); global
    # addresses, named in a header only (documentation ranges count as private for Python).
    settings = make_settings(
        str(server.settings.database_url), server.settings.data_dir, trusted_proxies="127.0.0.1"
    )
    async with run_server(settings) as proxied, httpx.AsyncClient(base_url=proxied.url) as client:
        await metrics_by_address(client)


async def metrics_by_address(client: httpx.AsyncClient) -> None:
    """/metrics for global addresses (404), internal ones and loopback itself (200)."""
    for public in ("8.8.8.8", "1.1.1.1", "2606:4700::1111"):
        answer = await client.get("/metrics", headers={"X-Forwarded-For": public})
        assert_error(answer, 404, "not_found")
        assert "pitbox_" not in answer.text, public
    for internal in ("10.1.2.3", "192.168.0.7", "172.16.5.4", "fd00::1"):
        answer = await client.get("/metrics", headers={"X-Forwarded-For": internal})
        assert answer.status_code == 200 and "pitbox_http_requests_total" in answer.text, internal
    direct = await client.get("/metrics")  # loopback itself
    assert direct.status_code == 200 and "pitbox_http_requests_total" in direct.text


async def test_metrics_token_protects_the_endpoint(server: RunningServer, tmp_path: object) -> None:
    settings = make_settings(
        str(server.settings.database_url), server.settings.data_dir, metrics_token="m" * 32
    )
    async with run_server(settings) as other, httpx.AsyncClient(base_url=other.url) as http:
        assert_error(await http.get("/metrics"), 401)
        ok = await http.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32})
        assert ok.status_code == 200 and "pitbox_http_requests_total" in ok.text


async def test_forwarded_for_is_believed_only_from_a_configured_proxy(
    client: httpx.AsyncClient, server: RunningServer
) -> None:
    # Issue 17, item 8: X-Forwarded-For was believed from loopback by default.
    # By default no proxy is trusted: a forged header changes nothing, the peer (loopback) is the client.
    assert (await client.get("/metrics", headers={"X-Forwarded-For": "93.184.216.34"})).status_code == 200
    settings = make_settings(
        str(server.settings.database_url), server.settings.data_dir, trusted_proxies="127.0.0.1"
    )
    async with run_server(settings) as proxied, httpx.AsyncClient(base_url=proxied.url) as http:
        # Behind a trusted proxy, the client is the last address the proxy appended: a public one is refused,
        # even when the client itself sent an internal-looking address first.
        for forwarded in ("93.184.216.34", "10.0.0.1, 93.184.216.34"):
            assert_error(await http.get("/metrics", headers={"X-Forwarded-For": forwarded}), 404)
        assert (await http.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})).status_code == 200


async def test_metrics_move_during_a_replay(
    client: httpx.AsyncClient, server: RunningServer, world: World
) -> None:
    from pitbox.client import PitboxClient
    from pitbox.demo import synthetic_recording
    from pitbox.replay import replay_recording

    team = await world.team()
    driver = team.driver.driver_id
    assert driver is not None

    def value(text: str, name: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(name + " ")]
        return float(lines[0].split()[1]) if lines else 0.0

    before = (await client.get("/metrics")).text
    async with (
        PitboxClient(server.url, token=team.engineer.token) as pitbox,
        pitbox.subscribe([f"telemetry:{driver}"]) as live,
    ):
        session = await pitbox.create_session(driver, "Metered")
        replayed = await replay_recording(
            pitbox,
            synthetic_recording(laps=2),
            driver_id=driver,
            session_id=session["id"],
            speed=None,
            transport="http",
        )
        await live.receive()
        during = (await client.get("/metrics")).text
    assert (
        value(during, "pitbox_telemetry_samples_total") - value(before, "pitbox_telemetry_samples_total")
        >= replayed.samples
    )
    assert value(during, "pitbox_coaching_queued_total") > value(before, "pitbox_coaching_queued_total")
    assert value(during, "pitbox_ws_deliveries_total") > value(before, "pitbox_ws_deliveries_total")
    assert value(during, "pitbox_ws_connections") >= 1
    assert value(during, "pitbox_ws_subscriptions") >= 1
    assert value(during, "pitbox_telemetry_body_bytes_total") > value(
        before, "pitbox_telemetry_body_bytes_total"
    )
