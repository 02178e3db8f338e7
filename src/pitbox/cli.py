"""The `pitbox` command: serve, database, users, tokens and API keys."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import orjson
import typer

from pitbox.config import Settings, SettingsError, load_settings
from pitbox.logs import configure_logging

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help="PitBox Backend Engine."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
users_app = typer.Typer(no_args_is_help=True, help="Users.")
token_app = typer.Typer(no_args_is_help=True, help="Access tokens.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys.")
config_app = typer.Typer(no_args_is_help=True, help="Configuration reference.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(token_app, name="token")
app.add_typer(keys_app, name="keys")
app.add_typer(config_app, name="config")

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        typer.echo(f"pitbox: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level_number)
    return settings


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def _run_with_services(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(services)` with the app's services (database opened and migrated), mapping our errors."""
    from pitbox.app import build_services
    from pitbox.errors import PitboxError

    async def main() -> T:
        async with build_services(settings) as services:
            return await work(services)

    try:
        return asyncio.run(main())
    except PitboxError as exc:
        typer.echo(f"pitbox: {exc.message}", err=True)
        raise typer.Exit(1) from None


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 8080).")] = None,
    host: Annotated[str | None, typer.Option(help="Interface (default: HOST or 0.0.0.0).")] = None,
) -> None:
    """Run the HTTP and WebSocket server."""
    import uvicorn

    from pitbox.app import create_app

    overrides = {k: v for k, v in {"port": port, "host": host}.items() if v is not None}
    settings = _settings(**overrides)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
        ws_max_size=1024 * 1024,
    )
    uvicorn.Server(config).run()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (also done at start-up)."""
    from pitbox.db import migrate
    from pitbox.db.pool import open_database

    settings = _settings()

    async def main() -> list[int]:
        async with (
            open_database(settings, apply_migrations=False) as database,
            database.pool.acquire() as conn,
        ):
            return await migrate.upgrade(conn)

    applied = asyncio.run(main())
    typer.echo(f"applied {applied}" if applied else "schema is up to date")


@db_app.command("init-sql")
def db_init_sql() -> None:
    """Print the whole schema as one psql script (the content of db-init.sql)."""
    from pitbox.db import migrate

    sys.stdout.write(migrate.init_sql())


@config_app.command("docs")
def config_docs() -> None:
    """Rewrite docs/configuration.md and .env.example from the Settings object."""
    from pathlib import Path

    from pitbox.config_reference import configuration_markdown, env_example

    Path("docs").mkdir(exist_ok=True)
    Path("docs/configuration.md").write_text(configuration_markdown(), encoding="utf-8")
    Path(".env.example").write_text(env_example(), encoding="utf-8")
    typer.echo("wrote docs/configuration.md and .env.example")


@users_app.command("create")
def users_create(
    email: str,
    role: Annotated[str, typer.Option(help="admin, manager, engineer or driver")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    team: Annotated[str | None, typer.Option(help="Team id to join.")] = None,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Create a user and print it as JSON (a driver also gets a driver profile: `driverId`)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    team_id = _uuid_option(team, "--team")
    settings = _settings()
    result = _run_with_services(
        settings,
        lambda s: s.auth.create_user(email, role, password=password, display_name=name, team_id=team_id),
    )
    _print_json(result)


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="Email or id of the user.")],
    ttl: Annotated[str, typer.Option(help="Lifetime such as 30m, 1h, 7d.")] = "1h",
) -> None:
    """Print a JWT for a user."""
    lifetime = parse_duration(ttl)
    settings = _settings()

    async def work(services: Any) -> str:
        row = await services.auth.resolve_user(user)
        token, _ = services.auth.issue_token(row["id"], lifetime)
        return str(token)

    typer.echo(_run_with_services(settings, work))


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option(help="A scope such as telemetry:write; repeat for more.")],
    driver: Annotated[str | None, typer.Option(help="Driver id the key acts for.")] = None,
    team: Annotated[str | None, typer.Option(help="Team id the key acts for.")] = None,
    name: Annotated[str, typer.Option(help="A label.")] = "",
) -> None:
    """Create an API key and print it once (with its id)."""
    driver_id, team_id = _uuid_option(driver, "--driver"), _uuid_option(team, "--team")
    settings = _settings()
    result = _run_with_services(
        settings,
        lambda s: s.auth.create_key(None, scopes=scope, driver_id=driver_id, team_id=team_id, name=name),
    )
    _print_json({"id": result["id"], "key": result["key"], "scopes": result["scopes"]})


def _uuid_option(value: str | None, flag: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        typer.echo(f"pitbox: {flag} must be an id (uuid), got {value!r}", err=True)
        raise typer.Exit(2) from None


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `1h`, `7d` as a timedelta; exits with a clear message otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        typer.echo(f"pitbox: --ttl must look like 30m, 1h or 7d, got {text!r}", err=True)
        raise typer.Exit(2)
    return timedelta(seconds=int(number) * units[unit])


def main() -> None:
    """Entry point of the console script."""
    app()
