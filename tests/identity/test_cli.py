"""Operators bootstrap with the CLI: users, tokens and API keys, printed for scripts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx

from tests.conftest import RunningServer


async def _pitbox(
    server: RunningServer, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": str(server.settings.database_url),
        "JWT_SECRET": str(server.settings.jwt_secret),
        "DATA_DIR": str(server.settings.data_dir),
        "LOG_LEVEL": "info",
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pitbox", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_cli_creates_a_driver_a_token_and_a_key(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    created = await _pitbox(
        server,
        "users",
        "create",
        "Cli.Driver@pitbox.test",
        "--role",
        "driver",
        "--password-stdin",
        stdin="s3cret-password\n",
    )
    assert created.returncode == 0, created.stderr
    user = json.loads(created.stdout)
    assert user["email"] == "cli.driver@pitbox.test" and user["role"] == "driver" and user["driverId"]
    assert "s3cret-password" not in created.stdout + created.stderr

    token = await _pitbox(server, "token", "create", "--user", user["email"], "--ttl", "15m")
    assert token.returncode == 0, token.stderr
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {token.stdout.strip()}"})
    assert me.json()["driverId"] == user["driverId"]

    key = await _pitbox(server, "keys", "create", "--driver", user["driverId"], "--scope", "telemetry:write")
    assert key.returncode == 0, key.stderr
    plaintext = json.loads(key.stdout)["key"]
    assert plaintext not in key.stderr
    assert (await client.get("/api/me", headers={"X-API-Key": plaintext})).json()["driverId"] == user[
        "driverId"
    ]


async def test_cli_refuses_bad_input_with_a_clear_message(server: RunningServer) -> None:
    bad_role = await _pitbox(server, "users", "create", "x@pitbox.test", "--role", "pilot")
    assert bad_role.returncode == 1 and "role must be one of" in bad_role.stderr
    bad_ttl = await _pitbox(server, "token", "create", "--user", "x@pitbox.test", "--ttl", "forever")
    assert bad_ttl.returncode == 2 and "--ttl" in bad_ttl.stderr
    unknown = await _pitbox(server, "token", "create", "--user", "nobody@pitbox.test")
    assert unknown.returncode == 1 and "user not found" in unknown.stderr
    bad_scope = await _pitbox(server, "keys", "create", "--team", "not-a-uuid", "--scope", "telemetry:write")
    assert bad_scope.returncode == 2
