"""Verified credentials are remembered for a few seconds; revocation still takes effect within that bound."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from pitbox.app import build_token_issuer
from pitbox.auth import api_keys
from pitbox.auth import store as auth_store
from pitbox.auth.access import Access
from pitbox.auth.credentials import Credentials
from pitbox.errors import Unauthorized
from tests.conftest import RunningServer, Team, assert_error

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
        other_instance = Credentials(
            pool, build_token_issuer(server.settings), Access(pool), principal_cache_s=CACHE_S
        )
        assert (await other_instance.authenticate(key)).kind == "api_key"
        revoked = await client.delete(f"/api/keys/{created.json()['id']}", headers=team.manager.headers)
        assert revoked.status_code == 200
        # The instance that revoked refuses at once; another one once its cached answer has expired.
        assert (await client.get("/api/me", headers={"X-API-Key": key})).status_code == 401
        await asyncio.sleep(CACHE_S * 1.5)  # the bound is the claim: past it, whatever the load, not trusted
        with pytest.raises(Unauthorized):
            await other_instance.authenticate(key)
    finally:
        await pool.close()


async def test_forged_credentials_are_never_remembered(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    # A key nobody issued is refused; were the refusal remembered, the same key would still be refused once
    # it exists. It is made to exist here straight in the database, as another instance would create it.
    forged = api_keys.generate_key()
    for _ in range(2):
        assert_error(
            await client.get("/api/me", headers={"X-API-Key": forged.plaintext}), 401, "invalid_api_key"
        )
    await auth_store.insert_key(
        server.services.database.pool,
        name="appears later",
        prefix=forged.prefix,
        secret_hash=forged.secret_hash,
        driver_id=uuid.UUID(str(team.driver.driver_id)),
        team_id=None,
        scopes=["telemetry:read"],
        created_by=None,
    )
    me = await client.get("/api/me", headers={"X-API-Key": forged.plaintext})
    assert me.status_code == 200, me.text
    assert me.json()["scopes"] == ["telemetry:read"]
