"""Login: tokens for the right password, 401 for the wrong one, 429 when someone keeps guessing."""

from __future__ import annotations

import httpx

from tests.conftest import World, assert_error


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


async def test_repeated_failures_are_rate_limited_per_account(
    client: httpx.AsyncClient, world: World
) -> None:
    user = await world.user("driver", password="right-password-1")
    limit = client_limit = 10
    for _ in range(client_limit):
        await client.post("/api/auth/login", json={"email": user.email, "password": "wrong-password"})
    limited = await client.post("/api/auth/login", json={"email": user.email, "password": "right-password-1"})
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert limit == client_limit


async def test_login_body_is_validated(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/auth/login", json={"email": "a@b.c"}), 422, "invalid")
    assert_error(await client.post("/api/auth/login", json=["not", "an", "object"]), 422, "invalid")
