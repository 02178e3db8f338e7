"""/metrics: Prometheus text with request counts by route template, open to internal networks only."""

from __future__ import annotations

import httpx

from tests.conftest import Actor, RunningServer, assert_error, make_settings, run_server


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient, admin: Actor) -> None:
    await client.get("/api/teams/00000000-0000-0000-0000-000000000000", headers=admin.headers)
    text = (await client.get("/metrics")).text
    assert 'pitbox_http_requests_total{method="GET",route="/api/teams/{team_id}",status="404"}' in text
    assert "00000000-0000" not in text
    assert "pitbox_db_pool_size" in text


async def test_metrics_token_protects_the_endpoint(server: RunningServer, tmp_path: object) -> None:
    settings = make_settings(str(server.settings.database_url), server.settings.data_dir, metrics_token="m" * 32)
    async with run_server(settings) as other, httpx.AsyncClient(base_url=other.url) as http:
        assert_error(await http.get("/metrics"), 401)
        ok = await http.get("/metrics", headers={"Authorization": "Bearer " + "m" * 32})
        assert ok.status_code == 200 and "pitbox_http_requests_total" in ok.text
