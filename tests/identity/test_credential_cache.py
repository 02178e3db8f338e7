"""Verified credentials are remembered for a few seconds; revocation still takes effect within that bound."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import httpx
import pytest

from pitbox.app import build_token_issuer
from pitbox.auth.access import Access
from pitbox.auth.passwords import Passwords
from pitbox.auth.service import AuthService
from pitbox.errors import Unauthorized
from tests.conftest import RunningServer, Team

CACHE_S = 0.2


async def test_key_revoked_on_another_instance_is_refused_once_the_cache_bound_passes(
    client: httpx.AsyncClient, team: Team, server: RunningServer
) -> None:
    created = await client.post(
        "/api/keys",
        json={"driverId": team.driver.driver_id, "scopes": ["telemetry:write"]},
        headers=team.manager.headers,
    )
    key = created.json()["key"]
    assert server.settings.database_url is not None
    pool = await asyncpg.create_pool(server.settings.database_url, min_size=1, max_size=2)
    try:
        other_instance = AuthService(
            pool,
            build_token_issuer(server.settings),
            Passwords(),
            Access(pool),
            token_ttl=timedelta(hours=1),
            login_limit_per_minute=10,
            principal_cache_s=CACHE_S,
        )
        assert (await other_instance.authenticate(key)).kind == "api_key"
        revoked = await client.delete(f"/api/keys/{created.json()['id']}", headers=team.manager.headers)
        assert revoked.status_code == 200
        # The instance that revoked refuses at once; another one once its cached answer has expired.
        assert (await client.get("/api/me", headers={"X-API-Key": key})).status_code == 401
        await asyncio.sleep(CACHE_S * 1.5)
        with pytest.raises(Unauthorized):
            await other_instance.authenticate(key)
    finally:
        await pool.close()


async def test_forged_credentials_are_never_remembered(server: RunningServer) -> None:
    auth = server.services.auth
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await auth.authenticate("pbk_000000000000_forged")
