"""Signing out: one token, every token of a user, and a password change, each before the tokens expire.

These tests run on a server of their own, so the login limits that the shared server's tests use up (per IP)
do not decide their outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Actor, RunningServer, World, assert_error, make_settings, run_server

PASSWORD = "pit-lane-speed-60"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def own_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    async with run_server(make_settings(database_url, tmp_path_factory.mktemp("sign-out"))) as server:
        yield server


@pytest.fixture
async def own_client(own_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=own_server.url, timeout=30) as http:
        yield http


@pytest.fixture
def own_world(own_server: RunningServer) -> World:
    return World(own_server.services)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["accessToken"])


async def signed_in_twice(client: httpx.AsyncClient, world: World) -> tuple[Actor, str, str]:
    """A user with a password and two tokens from two logins (a laptop and a phone)."""
    user = await world.user("engineer", password=PASSWORD)
    return user, await login(client, user.email), await login(client, user.email)


async def test_logout_revokes_that_token_only(own_client: httpx.AsyncClient, own_world: World) -> None:
    _, laptop, phone = await signed_in_twice(own_client, own_world)
    assert (await own_client.post("/api/auth/logout", headers=bearer(laptop))).status_code == 204
    assert_error(await own_client.get("/api/me", headers=bearer(laptop)), 401, "token_revoked")
    assert (await own_client.get("/api/me", headers=bearer(phone))).status_code == 200
    # Signing out twice is refused like any other use of a revoked token.
    assert_error(await own_client.post("/api/auth/logout", headers=bearer(laptop)), 401, "token_revoked")


async def test_logout_all_revokes_every_token_of_the_user_and_no_one_elses(
    own_client: httpx.AsyncClient, own_world: World
) -> None:
    user, laptop, phone = await signed_in_twice(own_client, own_world)
    bystander = await own_world.user("engineer")
    assert (await own_client.post("/api/auth/logout-all", headers=bearer(phone))).status_code == 204
    for token in (laptop, phone, user.token):
        assert_error(await own_client.get("/api/me", headers=bearer(token)), 401, "token_revoked")
    assert (await own_client.get("/api/me", headers=bearer(bystander.token))).status_code == 200
    # Signing in again right away gives a token that works (tokens are dated to the millisecond).
    fresh = await login(own_client, user.email)
    assert (await own_client.get("/api/me", headers=bearer(fresh))).status_code == 200


async def test_password_change_signs_out_other_tokens_and_returns_a_fresh_one(
    own_client: httpx.AsyncClient, own_world: World
) -> None:
    user, laptop, phone = await signed_in_twice(own_client, own_world)
    response = await own_client.put(
        "/api/me/password",
        json={"currentPassword": PASSWORD, "newPassword": "a-much-better-one"},
        headers=bearer(laptop),
    )
    assert response.status_code == 200, response.text
    fresh = response.json()["accessToken"]
    assert (await own_client.get("/api/me", headers=bearer(fresh))).status_code == 200
    for token in (laptop, phone):
        assert_error(await own_client.get("/api/me", headers=bearer(token)), 401, "token_revoked")
    old = await own_client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert_error(old, 401, "invalid_credentials")
    assert await login(own_client, user.email, "a-much-better-one")


async def test_wrong_current_password_changes_nothing(
    own_client: httpx.AsyncClient, own_world: World
) -> None:
    user, laptop, _ = await signed_in_twice(own_client, own_world)
    response = await own_client.put(
        "/api/me/password",
        json={"currentPassword": "not-my-password", "newPassword": "a-much-better-one"},
        headers=bearer(laptop),
    )
    assert_error(response, 403, "wrong_password")
    assert (await own_client.get("/api/me", headers=bearer(laptop))).status_code == 200
    assert await login(own_client, user.email)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"currentPassword": PASSWORD, "newPassword": "short"}, "newPassword"),
        ({"currentPassword": PASSWORD}, "newPassword"),
        ({"newPassword": "a-much-better-one"}, "currentPassword"),
        ({"currentPassword": PASSWORD, "newPassword": "x" * 1025}, "newPassword"),
        ({"currentPassword": PASSWORD, "newPassword": "a-much-better-one", "role": "admin"}, "role"),
    ],
)
async def test_bad_password_change_is_refused_naming_the_field(
    own_client: httpx.AsyncClient, own_world: World, body: dict[str, str], field: str
) -> None:
    user = await own_world.user("driver", password=PASSWORD)
    error = assert_error(await own_client.put("/api/me/password", json=body, headers=bearer(user.token)), 422)
    assert field in str(error), error
    assert await login(own_client, user.email)


async def test_api_keys_and_strangers_cannot_sign_out_or_change_passwords(
    own_client: httpx.AsyncClient, own_world: World
) -> None:
    team = await own_world.team()
    key = await own_world.api_key(driver_id=team.driver.driver_id, scopes=["telemetry:write"])
    for path in ("/api/auth/logout", "/api/auth/logout-all"):
        assert_error(await own_client.post(path, headers={"X-API-Key": key}), 400, "not_a_token")
        assert_error(await own_client.post(path), 401)
        assert_error(await own_client.post(path, headers=bearer("not-a-token")), 401)
    change = {"currentPassword": PASSWORD, "newPassword": "a-much-better-one"}
    assert_error(
        await own_client.put("/api/me/password", json=change, headers={"X-API-Key": key}), 400, "not_a_token"
    )
    assert_error(await own_client.put("/api/me/password", json=change), 401)
    # The key itself still works: signing out is for tokens.
    assert (await own_client.get("/api/me", headers={"X-API-Key": key})).status_code == 200


async def test_account_without_a_password_cannot_change_it(
    own_client: httpx.AsyncClient, own_world: World
) -> None:
    user = await own_world.user("engineer")  # no password: signs in through an identity provider
    change = {"currentPassword": "anything-at-all", "newPassword": "a-much-better-one"}
    assert_error(
        await own_client.put("/api/me/password", json=change, headers=bearer(user.token)), 409, "no_password"
    )


async def test_expired_revocations_are_dropped(own_client: httpx.AsyncClient, own_world: World) -> None:
    user = await own_world.user("engineer")
    pool = own_world.services.database.pool
    await pool.execute(
        "INSERT INTO revoked_tokens (token_id, user_id, expires_at) VALUES ($1, $2, now() - interval '2 hours')",
        "long-gone",
        uuid.UUID(user.id),
    )
    assert (await own_client.post("/api/auth/logout", headers=bearer(user.token))).status_code == 204
    assert not await pool.fetchval("SELECT count(*) FROM revoked_tokens WHERE token_id = 'long-gone'")


async def test_guessing_the_current_password_is_rate_limited(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, login_rate_per_minute=2)
    async with run_server(settings) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        user = await World(server.services).user("driver", password=PASSWORD)
        guess = {"currentPassword": "guess-number-1", "newPassword": "a-much-better-one"}
        for _ in range(2):
            assert_error(await client.put("/api/me/password", json=guess, headers=bearer(user.token)), 403)
        right = {"currentPassword": PASSWORD, "newPassword": "a-much-better-one"}
        limited = await client.put("/api/me/password", json=right, headers=bearer(user.token))
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
