"""Password guessing is throttled per source address and per account, with back-off instead of a lock, and a
source that signed into the account before keeps signing in (issue 17, item 5; OWASP Authentication Cheat
Sheet). The servers here believe X-Forwarded-For from loopback (TRUSTED_PROXIES=127.0.0.1), so one client
presents many source addresses; the last test shows a server that trusts no proxy ignores the header.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from pitbox.auth.ratelimit import ExponentialBackOff
from pitbox.auth.shared_ratelimit import SharedLimiter
from tests.conftest import RunningServer, World, assert_error, make_settings, redis_url, run_server
from tests.identity.test_shared_login_limit import REDIS_DATABASE, forget_counts

LIMIT = 3
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
async def proxied(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """A server behind a "proxy" on loopback, letting LIMIT failures a minute per address."""
    settings = make_settings(
        database_url,
        tmp_path_factory.mktemp("throttle"),
        trusted_proxies="127.0.0.1",
        login_rate_per_minute=LIMIT,
    )
    async with run_server(settings) as running:
        yield running


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _login(http: httpx.AsyncClient, email: str, password: str, address: str) -> httpx.Response:
    return await http.post(
        "/api/auth/login", json={"email": email, "password": password}, headers=_from(address)
    )


async def test_guesses_from_many_addresses_do_not_keep_out_a_known_source(proxied: RunningServer) -> None:
    # The attack: wrong passwords for one account from many addresses; then the right one got 429 everywhere.
    user = await World(proxied.services).user("engineer", password=PASSWORD)
    async with httpx.AsyncClient(base_url=proxied.url) as laptop:
        first = await _login(laptop, user.email, PASSWORD, "10.0.0.9")
        assert first.status_code == 200 and laptop.cookies.get("pitbox_device"), first.text
    async with httpx.AsyncClient(base_url=proxied.url) as attacker:
        for n in range(LIMIT):
            assert_error(
                await _login(attacker, user.email, "guess", f"10.66.0.{n}"), 401, "invalid_credentials"
            )
        # A fresh address now waits out the account's back-off (60 s first), the right password included...
        waiting = await _login(attacker, user.email, PASSWORD, "10.66.1.1")
        assert_error(waiting, 429, "rate_limited")
        assert 1 <= int(waiting.headers["retry-after"]) <= 60
    # ...but the owner's known address signs in, and so does their device (its cookie) from anywhere.
    async with httpx.AsyncClient(base_url=proxied.url) as office:
        assert (await _login(office, user.email, PASSWORD, "10.0.0.9")).status_code == 200
    async with httpx.AsyncClient(
        base_url=proxied.url, cookies={"pitbox_device": first.cookies["pitbox_device"]}
    ) as phone:
        assert (await _login(phone, user.email, PASSWORD, "10.77.0.1")).status_code == 200


async def test_one_address_guessing_many_accounts_is_limited_per_address(proxied: RunningServer) -> None:
    world = World(proxied.services)
    users = [await world.user("driver", password=PASSWORD) for _ in range(LIMIT + 1)]
    async with httpx.AsyncClient(base_url=proxied.url) as http:
        for user in users[:LIMIT]:  # one wrong password per account: no account is near its back-off
            assert_error(await _login(http, user.email, "guess", "10.55.0.1"), 401)
        assert_error(await _login(http, users[LIMIT].email, PASSWORD, "10.55.0.1"), 429, "rate_limited")
        # The same account from another address: the limit was the address's, not the account's.
        assert (await _login(http, users[LIMIT].email, PASSWORD, "10.55.0.2")).status_code == 200


async def test_a_device_token_a_client_made_up_is_not_a_known_source(proxied: RunningServer) -> None:
    user = await World(proxied.services).user("engineer", password=PASSWORD)
    async with httpx.AsyncClient(
        base_url=proxied.url, cookies={"pitbox_device": "chosen-by-an-attacker"}
    ) as http:
        for n in range(LIMIT):
            assert_error(await _login(http, user.email, "guess", f"10.44.0.{n}"), 401)
        assert_error(await _login(http, user.email, PASSWORD, "10.44.1.1"), 429)


async def test_forwarded_for_from_a_peer_that_is_no_trusted_proxy_is_ignored(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Issue 17, item 8: X-Forwarded-For from loopback was believed by default, so each guess could claim a
    # new address and the per-address limit never bit.
    settings = make_settings(database_url, tmp_path_factory.mktemp("no-proxy"), login_rate_per_minute=LIMIT)
    async with run_server(settings) as running, httpx.AsyncClient(base_url=running.url) as http:
        world = World(running.services)
        world_users = [await world.user("driver", password=PASSWORD) for _ in range(LIMIT + 1)]
        for n, user in enumerate(world_users[:LIMIT]):
            assert_error(await _login(http, user.email, "guess", f"10.33.0.{n}"), 401)
        assert_error(await _login(http, world_users[LIMIT].email, PASSWORD, "10.33.9.9"), 429, "rate_limited")


def test_the_back_off_doubles_after_each_failure_and_is_forgotten_after_a_quiet_hour() -> None:
    now = [1000.0]
    backoff = ExponentialBackOff(free=3, first_s=60, max_s=900, forget_s=3600, clock=lambda: now[0])
    waits = []
    for _ in range(9):
        wait = backoff.attempt(["account:a"])
        waits.append(wait)
        now[0] += wait if wait else 0.0  # wait out whatever is asked, then fail again
        if wait:
            assert backoff.attempt(["account:a"]) == 0.0  # the next try is let through (and fails)
    # Three free failures, then one more try after 60 s, 120 s, 240 s, 480 s, then 900 s at most.
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == [60.0, 120.0, 240.0, 480.0, 900.0, 900.0]
    # Another key is not affected; a quiet hour after the last wait forgets everything.
    assert backoff.attempt(["account:b"]) == 0.0
    now[0] += 900 + 3600
    assert backoff.attempt(["account:a"]) == 0.0 and backoff.attempt(["account:a"]) == 0.0


@pytest.mark.parametrize("shared", [False, True], ids=["one instance", "Redis"])
async def test_the_back_off_is_shared_by_instances_and_grows(shared: bool) -> None:
    url = redis_url(REDIS_DATABASE) if shared else None
    if url is not None:
        await forget_counts(url)
    first = 0.3
    a = SharedLimiter("login", 2, 60.0, url, backoff_first_s=first)
    b = SharedLimiter("login", 2, 60.0, url, backoff_first_s=first) if shared else a
    try:
        key = ["account:someone@pitbox.test"]
        assert (await a.attempt((), backoff_keys=key))[0] == 0
        assert (await b.attempt((), backoff_keys=key))[0] == 0  # the second failure starts the back-off
        wait, _ = await b.attempt((), backoff_keys=key)
        assert 0 < wait <= first
        for _ in range(100):  # sleep as long as the limiter says, until it lets an attempt through
            left, _ = await a.attempt((), backoff_keys=key)
            if left == 0:
                break
            await asyncio.sleep(left)
        wait, _ = await b.attempt((), backoff_keys=key)
        assert first < wait <= 2 * first  # twice as long after one more failure
        _, ticket = await a.attempt(["ip:10.0.0.1"])
        await a.succeeded(["ip:10.0.0.1"], ticket, forgive=key)  # a success clears it everywhere
        assert (await b.attempt((), backoff_keys=key))[0] == 0
    finally:
        await a.close()
        if b is not a:
            await b.close()
        if url is not None:
            await forget_counts(url)
