"""Operators bootstrap with the CLI: users, tokens and API keys, printed for scripts.

stdout holds only a command's result (JSON, or the bare token), logs go to stderr; the exit status is 0 on
success, 1 when the operation fails, 2 for a usage error.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx

from tests.conftest import RunningServer, World, assert_error, pitbox_cli


async def test_cli_creates_a_driver_a_token_and_a_key(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    created = await pitbox_cli(
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

    token = await pitbox_cli(server, "token", "create", "--user", user["email"], "--ttl", "15m")
    assert token.returncode == 0, token.stderr
    assert token.stdout.count("\n") == 1 and token.stdout.count(".") == 2  # the bare JWT, one line
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {token.stdout.strip()}"})
    assert me.json()["driverId"] == user["driverId"]

    key = await pitbox_cli(
        server, "keys", "create", "--driver", user["driverId"], "--scope", "telemetry:write"
    )
    assert key.returncode == 0, key.stderr
    plaintext = json.loads(key.stdout)["key"]
    assert plaintext not in key.stderr
    assert (await client.get("/api/me", headers={"X-API-Key": plaintext})).json()["driverId"] == user[
        "driverId"
    ]


async def test_cli_refuses_bad_input_with_a_clear_message(server: RunningServer) -> None:
    bad_role = await pitbox_cli(server, "users", "create", "x@pitbox.test", "--role", "pilot")
    assert bad_role.returncode == 2 and "role must be one of" in bad_role.stderr
    bad_ttl = await pitbox_cli(server, "token", "create", "--user", "x@pitbox.test", "--ttl", "forever")
    assert bad_ttl.returncode == 2 and "--ttl" in bad_ttl.stderr
    unknown = await pitbox_cli(server, "token", "create", "--user", "nobody@pitbox.test")
    assert unknown.returncode == 1 and "user not found" in unknown.stderr
    bad_scope = await pitbox_cli(
        server, "keys", "create", "--team", "not-a-uuid", "--scope", "telemetry:write"
    )
    assert bad_scope.returncode == 2
    unknown_option = await pitbox_cli(server, "users", "create", "x@pitbox.test", "--rank", "driver")
    assert unknown_option.returncode == 2 and "--rank" in unknown_option.stderr
    no_database = await pitbox_cli(
        server,
        "users",
        "disable",
        "x@pitbox.test",
        env={"DATABASE_URL": "postgresql://pitbox@127.0.0.1:1/none"},
    )
    assert no_database.returncode == 1 and "database could not be used" in no_database.stderr
    for refused in (bad_role, bad_ttl, unknown, bad_scope, unknown_option, no_database):
        assert refused.stdout == "", refused.stdout


async def test_values_the_rules_refuse_are_usage_errors_with_status_2(server: RunningServer) -> None:
    """A role or scope that does not exist, an email that is none: the arguments are wrong (2, like an unknown
    option), not the operation (1: a user that exists, a user not found)."""
    cases = [
        (("users", "create", "x@pitbox.test", "--role", "wizard"), "role must be one of"),
        (("users", "create", "not-an-email", "--role", "driver"), "email is not valid"),
        (("keys", "create", "--team", str(uuid.uuid4()), "--scope", "nonsense"), "unknown scopes: nonsense"),
        (("users", "create", "x@pitbox.test", "--role", "driver", "--password-stdin"), "password"),
    ]
    for args, message in cases:
        refused = await pitbox_cli(server, *args, stdin="short\n")
        assert (refused.returncode, refused.stdout) == (2, ""), (args, refused.stderr)
        assert message in refused.stderr, (args, refused.stderr)
    created = await pitbox_cli(server, "users", "create", "twice@pitbox.test", "--role", "engineer")
    assert created.returncode == 0, created.stderr
    again = await pitbox_cli(server, "users", "create", "twice@pitbox.test", "--role", "engineer")
    assert again.returncode == 1 and "exists" in again.stderr  # the operation failed: not a usage error


async def test_help_shows_every_command_description_as_written(server: RunningServer) -> None:
    """Help text is not read as markup: `prints {"applied": [versions]}` keeps its brackets."""
    from typer.main import get_command

    from pitbox.cli import app

    def commands(group: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
        found = []
        for name, command in getattr(group, "commands", {}).items():
            found.append(((*path, name), command.help or ""))
            found += commands(command, (*path, name))
        return found

    bracketed = [(path, text) for path, text in commands(get_command(app), ()) if "[" in text]
    assert (
        ("db", "upgrade"),
        'Apply pending migrations (also done at start-up); prints {"applied": [versions]}.',
    ) in [(path, text.strip()) for path, text in bracketed]
    for path, text in bracketed:
        shown = await pitbox_cli(server, *path, "--help", env={"COLUMNS": "400"})
        assert shown.returncode == 0, shown.stderr
        flat = " ".join(shown.stdout.split())
        for part in re.findall(r"\[[^\]]*\]", text):
            assert part in flat, (path, part, shown.stdout)


async def test_cli_disables_and_enables_a_user(
    server: RunningServer, client: httpx.AsyncClient, world: World
) -> None:
    user = await world.user("engineer", password="pit-lane-speed-60")
    credentials = {"email": user.email, "password": "pit-lane-speed-60"}
    unused = (await client.post("/api/auth/login", json=credentials)).json()["accessToken"]

    disabled = await pitbox_cli(server, "users", "disable", user.email)
    assert disabled.returncode == 0, disabled.stderr
    assert json.loads(disabled.stdout) == {"id": user.id, "email": user.email, "disabled": True}
    assert_error(await client.post("/api/auth/login", json=credentials), 401, "invalid_credentials")
    assert_error(
        await client.get("/api/me", headers={"Authorization": f"Bearer {unused}"}), 401, "invalid_token"
    )

    enabled = await pitbox_cli(server, "users", "enable", user.id)
    assert enabled.returncode == 0, enabled.stderr
    fresh = (await client.post("/api/auth/login", json=credentials)).json()["accessToken"]
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {fresh}"})).json()["user"][
        "id"
    ] == user.id
    # Enabling again does not bring back the tokens from before.
    old = await client.get("/api/me", headers={"Authorization": f"Bearer {unused}"})
    assert_error(old, 401, "token_revoked")

    unknown = await pitbox_cli(server, "users", "disable", "nobody@pitbox.test")
    assert unknown.returncode == 1 and "user not found" in unknown.stderr
