"""Failed logins are counted across instances that share Redis, and per instance while Redis does not answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from pitbox.auth.shared_ratelimit import KEY_PREFIX, SharedLimiter
from tests.conftest import RunningServer, World, assert_error, make_settings, redis_url, run_server

#: A Redis database of its own, so these counts meet no other test's (or run's) use of Redis.
REDIS_DATABASE = 15
LIMIT = 3
PASSWORD = "pit-lane-speed-60"


async def forget_counts(url: str) -> None:
    """Drop every login count in Redis: each test starts from none (the IP key is 127.0.0.1 for all)."""
    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(f"{KEY_PREFIX}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def two_instances(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """Two servers on one database and one Redis, allowing LIMIT failed logins a minute."""
    url = redis_url(REDIS_DATABASE)
    await forget_counts(url)
    settings = [
        make_settings(database_url, tmp_path_factory.mktemp(name), redis_url=url, login_rate_per_minute=LIMIT)
        for name in ("limit-a", "limit-b")
    ]
    try:
        async with run_server(settings[0]) as a, run_server(settings[1]) as b:
            yield a, b
    finally:
        await forget_counts(url)


async def test_failed_logins_on_two_instances_add_up_to_one_limit(
    two_instances: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_instances
    user = await World(a.services).user("engineer", password=PASSWORD)
    async with httpx.AsyncClient(base_url=a.url) as on_a, httpx.AsyncClient(base_url=b.url) as on_b:
        for http in (on_a, on_b, on_a):  # LIMIT failures, spread over both instances
            wrong = await http.post(
                "/api/auth/login", json={"email": user.email, "password": "not-it-at-all"}
            )
            assert_error(wrong, 401, "invalid_credentials")
        for http in (on_b, on_a):  # either instance now refuses even the right password
            limited = await http.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
            assert_error(limited, 429, "rate_limited")
            assert int(limited.headers["retry-after"]) >= 1


async def test_guesses_in_flight_together_on_two_instances_get_no_more_than_the_limit(
    two_instances: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_instances
    user = await World(a.services).user("engineer", password=PASSWORD)
    wrong = {"email": user.email, "password": "not-it-at-all"}
    async with httpx.AsyncClient(base_url=a.url) as on_a, httpx.AsyncClient(base_url=b.url) as on_b:
        answers = await asyncio.gather(
            *(http.post("/api/auth/login", json=wrong) for http in [on_a, on_b] * 10)
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [401] * LIMIT + [429] * (20 - LIMIT), statuses


@pytest.mark.parametrize("shared", [False, True], ids=["one instance", "Redis"])
async def test_attempts_in_flight_together_are_let_through_up_to_the_limit_only(shared: bool) -> None:
    url = redis_url(REDIS_DATABASE) if shared else None
    if url:
        await forget_counts(url)
    limiter = SharedLimiter("test", LIMIT, 60.0, url)
    try:
        answers = await asyncio.gather(*(limiter.attempt(["ip:10.0.0.1"]) for _ in range(50)))
        assert sum(1 for wait, _ in answers if wait == 0) == LIMIT
        assert all(0 < wait <= 60 for wait, _ in answers if wait > 0)
        # A success is taken back: its place is free again.
        first_ticket = next(ticket for wait, ticket in answers if wait == 0)
        await limiter.succeeded(["ip:10.0.0.1"], first_ticket)
        assert (await limiter.attempt(["ip:10.0.0.1"]))[0] == 0
        assert (await limiter.attempt(["ip:10.0.0.1"]))[0] > 0
    finally:
        await limiter.close()
        if url:
            await forget_counts(url)


async def test_limiter_counts_on_its_own_while_redis_does_not_answer() -> None:
    limiter = SharedLimiter("login", 2, 60.0, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        assert limiter.shared
        keys = ["email:someone@pitbox.test"]
        assert [(await limiter.attempt(keys))[0] for _ in range(3)][:2] == [0.0, 0.0]
        assert (await limiter.attempt(keys))[0] > 0
        _, ticket = await limiter.attempt(["email:other@pitbox.test"])
        await limiter.succeeded(keys, ticket, forgive=keys)
        assert (await limiter.attempt(keys))[0] == 0.0
    finally:
        await limiter.close()
