"""Login: tokens for the right password, 401 for the wrong one, 429 when someone keeps guessing: counted per
account (whatever address the guesses come from) and per address (whatever accounts they try)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, World, assert_error, make_settings, run_server

LIMIT = 3
PASSWORD = "right-password-1"


async def test_login_gives_a_bearer_token_that_works(client: httpx.AsyncClient, world: World) -> None:
    user = await world.user("engineer", password="pit-lane-speed-60")
    response = await client.post(
        "/api/auth/login", json={"email": user.email.upper(), "password": "pit-lane-speed-60"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tokenType"] == "bearer" and body["expiresAt"]
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['accessToken']}"})
    assert me.json()["user"]["email"] == user.email
    assert "password" not in me.text and "hash" not in me.text


async def test_wrong_password_and_unknown_email_look_the_same(
    client: httpx.AsyncClient, world: World
) -> None:
    user = await world.user("engineer", password="pit-lane-speed-60")
    wrong = await client.post("/api/auth/login", json={"email": user.email, "password": "nope-nope"})
    unknown = await client.post(
        "/api/auth/login", json={"email": "ghost@pitbox.test", "password": "nope-nope"}
    )
    assert assert_error(wrong, 401, "invalid_credentials") == assert_error(
        unknown, 401, "invalid_credentials"
    )


@pytest.fixture
async def limited_server(database_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server of our own (its limiter counts only this test's attempts) allowing LIMIT failures a minute."""
    async with run_server(
        make_settings(
            database_url,
            tmp_path,
            login_rate_per_minute=LIMIT,
            ingest_processes=0,
            trusted_proxies="127.0.0.1",
        )
    ) as running:
        yield running


async def log_in(http: httpx.AsyncClient, email: str, password: str, address: str) -> httpx.Response:
    """A login from `address`, as a reverse proxy on loopback reports it (the server trusts X-Forwarded-For from
    127.0.0.1: TRUSTED_PROXIES)."""
    return await http.post(
        "/api/auth/login", json={"email": email, "password": password}, headers={"X-Forwarded-For": address}
    )


async def test_failures_on_one_account_from_many_addresses_are_limited_per_account(
    limited_server: RunningServer,
) -> None:
    world = World(limited_server.services)
    target, bystander = [await world.user("driver", password=PASSWORD) for _ in range(2)]
    async with httpx.AsyncClient(base_url=limited_server.url) as http:
        for n in range(LIMIT):  # each guess from an address of its own: no address reaches the limit
            assert_error(await log_in(http, target.email, "wrong-password", f"198.51.100.{n}"), 401)
        limited = await log_in(http, target.email, PASSWORD, "198.51.100.200")
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        # Another account is not affected, from a fresh address or from one the guesses came from.
        for address in ("198.51.100.201", "198.51.100.0"):
            assert (await log_in(http, bystander.email, PASSWORD, address)).status_code == 200


async def test_failures_from_one_address_on_many_accounts_are_limited_per_address(
    limited_server: RunningServer,
) -> None:
    world = World(limited_server.services)
    accounts = [await world.user("driver", password=PASSWORD) for _ in range(LIMIT + 1)]
    async with httpx.AsyncClient(base_url=limited_server.url) as http:
        for account in accounts[:LIMIT]:  # one guess per account: no account reaches the limit
            assert_error(await log_in(http, account.email, "wrong-password", "203.0.113.7"), 401)
        limited = await log_in(http, accounts[LIMIT].email, PASSWORD, "203.0.113.7")
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        # The same account from another address signs in: the address was limited, not the account.
        assert (await log_in(http, accounts[LIMIT].email, PASSWORD, "203.0.113.8")).status_code == 200


async def test_login_body_is_validated(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/auth/login", json={"email": "a@b.c"}), 422, "invalid")
    assert_error(await client.post("/api/auth/login", json=["not", "an", "object"]), 422, "invalid")
