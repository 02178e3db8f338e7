"""The `pitbox` command: serve, database, users, tokens and API keys.

Every command writes only its result on stdout (a record as JSON, the bare token of `token create`, the SQL of
`db init-sql`, the one JSON line of `demo`); logs, progress and error messages go to stderr. Exit status: 0 on
success, 1 when the operation fails (refused: a user that exists, one not found; the database unreachable), 2
for a usage error (a bad option, argument or setting, or a value the rules refuse: an unknown role or scope, an
email that is none).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any, TypeVar

import asyncpg
import orjson
import typer

from pitbox.config import Settings, SettingsError, load_settings
from pitbox.logs import configure_logging

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is shown as written: `{"applied": [versions]}` is not markup
    help="PitBox Backend Engine.",
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

#: Exit statuses: the operation failed; the command was used wrongly (click's own status for usage errors).
FAILED = 1
USAGE = 2


def _settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        typer.echo(f"pitbox: {exc}", err=True)
        raise typer.Exit(USAGE) from None
    configure_logging(settings.log_level_number)
    return settings


def _print_json(value: Any) -> None:
    """A command's result: JSON on stdout, and nothing else there."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    sys.stdout.flush()


def _run(main: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a message on stderr and status 2 for input the rules refuse (an unknown
    role or scope, a bad email: the arguments were wrong), 1 for any other refusal or an unreachable
    database."""
    from pitbox.errors import Invalid, PitboxError

    try:
        return asyncio.run(main)
    except Invalid as exc:
        typer.echo(f"pitbox: {exc.message}", err=True)
        raise typer.Exit(USAGE) from None
    except PitboxError as exc:
        typer.echo(f"pitbox: {exc.message}", err=True)
        raise typer.Exit(FAILED) from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        typer.echo(f"pitbox: the database could not be used: {exc}", err=True)
        raise typer.Exit(FAILED) from None


def _run_with_services(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(services)` with the app's services (database opened and migrated), mapping our errors."""
    from pitbox.app import build_services

    async def main() -> T:
        # A command posts no telemetry bodies: no ingest worker processes to start and stop around it.
        async with build_services(settings.model_copy(update={"ingest_processes": 0})) as services:
            return await work(services)

    return _run(main())


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 8080).")] = None,
    host: Annotated[
        str | None,
        typer.Option(help="Interface (default: HOST or 127.0.0.1; the container image sets HOST=0.0.0.0)."),
    ] = None,
) -> None:
    """Run the HTTP and WebSocket server."""
    from pitbox.app import create_app
    from pitbox.serving import make_server

    overrides = {k: v for k, v in {"port": port, "host": host}.items() if v is not None}
    settings = _settings(**overrides)
    make_server(create_app(settings), settings).run()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (also done at start-up); prints {"applied": [versions]}."""
    from pitbox.db import migrate
    from pitbox.db.pool import open_database

    settings = _settings()

    async def main() -> list[int]:
        async with (
            open_database(settings, apply_migrations=False) as database,
            database.pool.acquire() as conn,
        ):
            return await migrate.upgrade(conn)

    _print_json({"applied": _run(main())})


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
    _print_json({"written": ["docs/configuration.md", ".env.example"]})


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
        lambda s: s.users.create_user(email, role, password=password, display_name=name, team_id=team_id),
    )
    _print_json(result)


@users_app.command("disable")
def users_disable(user: Annotated[str, typer.Argument(help="Email or id of the user.")]) -> None:
    """Disable a user: no more logins; running servers refuse their tokens at once when they share a broker
    (REDIS_URL or NATS_URL) and within 5 s otherwise, and end their open sockets at the next re-check
    (WS_RECHECK_S). Prints the user as JSON."""
    _print_json(_run_with_services(_settings(), lambda s: s.users.set_disabled(user, True)))


@users_app.command("enable")
def users_enable(user: Annotated[str, typer.Argument(help="Email or id of the user.")]) -> None:
    """Enable a disabled user again: they sign in afresh (tokens from before stay refused)."""
    _print_json(_run_with_services(_settings(), lambda s: s.users.set_disabled(user, False)))


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="Email or id of the user.")],
    ttl: Annotated[str, typer.Option(help="Lifetime such as 30m, 1h, 7d.")] = "1h",
) -> None:
    """Print a JWT for a user (the bare token, for `$(pitbox token create …)`)."""
    lifetime = parse_duration(ttl)
    settings = _settings()

    async def work(services: Any) -> str:
        row = await services.users.resolve_user(user)
        token, _ = services.logins.issue_token(row["id"], lifetime)
        return str(token)

    token = _run_with_services(settings, work)
    sys.stdout.write(token + "\n")


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
        lambda s: s.keys.create_key(None, scopes=scope, driver_id=driver_id, team_id=team_id, name=name),
    )
    _print_json({"id": result["id"], "key": result["key"], "scopes": result["scopes"]})


@app.command()
def replay(
    file: Annotated[str, typer.Argument(help="A recording: .ibt, .ld, Assetto Corsa .raw, or CSV.")],
    driver: Annotated[str, typer.Option(help="Driver id the samples belong to.")],
    session: Annotated[str, typer.Option(help="Name of the new session.")],
    speed: Annotated[str, typer.Option(help="1 (real time), 5, … or max.")] = "1",
    server: Annotated[str, typer.Option(help="Server URL.")] = "http://127.0.0.1:8080",
    token: Annotated[
        str | None, typer.Option(help="A JWT or API key (default: PITBOX_TOKEN).", envvar="PITBOX_TOKEN")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Samples per batch.")] = 60,
    track: Annotated[
        str | None, typer.Option(help="Track name, when the recording names none (an Assetto Corsa capture).")
    ] = None,
    track_config: Annotated[
        str | None, typer.Option(help="Track layout, when the recording names none.")
    ] = None,
    car: Annotated[str | None, typer.Option(help="Car, when the recording names none.")] = None,
) -> None:
    """Stream a recorded session to a running server, as a relay agent would, with a progress bar (on stderr);
    prints {"sessionId", "samples", "seconds"}.

    The session carries the track (name, layout, lap length measured from the data) and the car the recording
    names; --track, --track-config and --car fill in what it does not."""
    from rich.console import Console
    from rich.progress import Progress

    from pitbox.client import ApiError, PitboxClient
    from pitbox.errors import PitboxError as DomainError
    from pitbox.recordings import open_recording
    from pitbox.replay import replay_recording, session_fields

    pace = None if speed == "max" else _positive_float(speed, "--speed")
    if token is None:
        typer.echo("pitbox: give --token or set PITBOX_TOKEN", err=True)
        raise typer.Exit(USAGE)
    try:
        recording = open_recording(file)
    except DomainError as exc:
        typer.echo(f"pitbox: {exc.message}", err=True)
        raise typer.Exit(FAILED) from None

    async def main() -> None:
        async with PitboxClient(server, token=token) as client:
            fields = session_fields(recording, track=track, track_config=track_config, car=car)
            created = await client.create_session(driver, session, **fields)
            with Progress(transient=False, console=Console(stderr=True)) as progress:
                task = progress.add_task(
                    f"replaying {recording.n_samples} samples", total=recording.n_samples
                )
                result = await replay_recording(
                    client,
                    recording,
                    driver_id=driver,
                    session_id=created["id"],
                    speed=pace,
                    batch_size=batch_size,
                    on_batch=lambda n: progress.advance(task, n),
                )
            _print_json(
                {
                    "sessionId": result.session_id,
                    "samples": result.samples,
                    "seconds": round(result.seconds, 3),
                }
            )

    try:
        asyncio.run(main())
    except ApiError as exc:
        typer.echo(f"pitbox: server answered {exc}", err=True)
        raise typer.Exit(FAILED) from None
    except OSError as exc:
        typer.echo(f"pitbox: {server} could not be reached: {exc}", err=True)
        raise typer.Exit(FAILED) from None


@app.command()
def demo(
    file: Annotated[
        str | None, typer.Option(help="Recording to replay (default: a Langley lap, or synthetic).")
    ] = None,
    speed: Annotated[str, typer.Option(help="Replay speed: 1 (real time), 5, … or max.")] = "1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    data_dir: Annotated[
        str, typer.Option(help="Data directory of the demo (kept apart from a real one).")
    ] = "./data-demo",
) -> None:
    """Start the server with embedded defaults, a demo team and login, and replay a recording in a loop.

    Its result, one JSON line on stdout, is what to open and how to sign in: {"url", "docs", "email",
    "password", "driverId", "channel", "token"}; stderr says the same in words."""
    from pathlib import Path

    from pitbox.demo import DemoWorld, load_demo_recording, run_demo

    pace = None if speed == "max" else _positive_float(speed, "--speed")
    settings = _settings(port=port, data_dir=Path(data_dir), host="127.0.0.1")
    recording = load_demo_recording(Path(file) if file else None)

    def announce(url: str, world: DemoWorld) -> None:
        # The result, for scripts: one JSON line on stdout (the demo then runs until stopped). For people, the
        # same in words on stderr.
        channel = f"telemetry:{world.driver_id}"
        result = {"url": f"{url}/", "docs": f"{url}/docs", "email": world.email, "password": world.password}
        result |= {"driverId": world.driver_id, "channel": channel, "token": world.token}
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        sys.stdout.flush()
        typer.echo(f"PitBox demo running at {url}/  (API docs: {url}/docs)", err=True)
        typer.echo(f"log in as {world.email} / {world.password}", err=True)
        typer.echo(f"driver {world.driver_id}: live telemetry on channel {channel}", err=True)

    asyncio.run(run_demo(settings, recording, pace, announce))


@app.command()
def prune(
    video_older_than: Annotated[
        str,
        typer.Option("--video-older-than", help="Delete video frames stored longer ago than this: 7d, 12h."),
    ],
) -> None:
    """Delete old data: video frames (rows and image files together); prints {"deletedVideoFrames": n}."""
    age = parse_duration(video_older_than, "--video-older-than")
    settings = _settings()
    deleted = _run_with_services(settings, lambda s: s.video.prune_older_than(age))
    _print_json({"deletedVideoFrames": deleted})


def _positive_float(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        typer.echo(f"pitbox: {flag} must be a positive number or max, got {text!r}", err=True)
        raise typer.Exit(USAGE)
    return value


def _uuid_option(value: str | None, flag: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        typer.echo(f"pitbox: {flag} must be an id (uuid), got {value!r}", err=True)
        raise typer.Exit(USAGE) from None


def parse_duration(text: str, flag: str = "--ttl") -> timedelta:
    """`30s`, `15m`, `1h`, `7d` as a timedelta; exits with a clear message (a usage error) otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        typer.echo(f"pitbox: {flag} must look like 30m, 1h or 7d, got {text!r}", err=True)
        raise typer.Exit(USAGE)
    return timedelta(seconds=int(number) * units[unit])


from pitbox.relay import cli as relay_cli  # noqa: E402 - the relay's commands live in their own module

app.command("relay")(relay_cli.relay)
app.command("relay-replay")(relay_cli.relay_replay)


def main() -> None:
    """Entry point of the console script."""
    app()
