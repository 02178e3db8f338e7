"""Fixtures that build the world: a real PostgreSQL, a real server on loopback, users and teams.

The database is the embedded one (pgserver) unless TEST_DATABASE_URL points at another server; each test run
gets a fresh database on it. The server is the real app under uvicorn, on a free loopback port, in this loop.

What some tests need from the machine (../shared/data, Redis, NATS, Chromium, Node) is asked for with
`require`: a developer without it gets a skip saying what is missing; a CI run (`CI=true`), whose `.ci/run`
provides all of it, gets a failure instead, and any other skip fails the CI run too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from pitbox.app import create_app
from pitbox.config import Settings
from pitbox.services import Services
from pitbox.serving import make_server

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TEST_JWT_SECRET = "test-secret-0123456789-abcdefghij-klmnopqrst"


#: A CI run: what `.ci/run` promises to provide must be there, so a missing piece fails instead of skipping.
ON_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str) -> NoReturn:
    """Stop a test that needs `what` (a sentence saying what is missing and how to get it): a skip on a
    developer's machine, a failure on CI."""
    if ON_CI:
        pytest.fail(f"CI=true and {what} (.ci/run provides it)", pytrace=False)
    pytest.skip(what)


def shared_data(relative: str) -> Path:
    """A recording in ../shared/data; without it the test stops (`missing`)."""
    path = SHARED_DATA / relative
    if not path.exists():
        missing(f"recording {relative} is missing: ../shared/data is not beside this checkout")
    return path


def answers(url: str) -> bool:
    """Something accepts TCP connections at the host and port of `url`."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1.0):
            return True
    except OSError:
        return False


def redis_url(database: int = 0) -> str:
    """The Redis for multi-instance tests: REDIS_URL (its host and port) or 127.0.0.1:6379, with `database`;
    the test stops (`missing`) when nothing answers there."""
    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    url = urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))
    if not answers(url):
        missing(
            f"Redis does not answer at {parts.hostname}:{parts.port} (start redis-server or set REDIS_URL)"
        )
    return url


def nats_url() -> str:
    """The NATS server for multi-instance tests: NATS_URL or nats://127.0.0.1:4222; the test stops
    (`missing`) when nothing answers there."""
    url = os.environ.get("NATS_URL") or "nats://127.0.0.1:4222"
    if not answers(url):
        missing(f"NATS does not answer at {url} (start nats-server or set NATS_URL)")
    return url


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """On CI a skipped test is a test that did not run: the run fails (its reasons are listed by `-ra`)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if ON_CI and skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_line(f"CI=true: {skipped} test(s) skipped, which fails a CI run", red=True)


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str, deadline_s: float = 45.0) -> None:
    """Poll an asynchronous `condition` (a database query, a request) until it holds; fail naming `what` when
    the deadline (a safety net against a hung test, not a timing assertion) passes."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    while not await condition():
        if loop.time() > until:
            raise AssertionError(f"gave up waiting ({deadline_s:.0f} s) for: {what}")
        await asyncio.sleep(0.02)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def embedded_postgres_dir() -> Iterator[Path]:
    """A fresh folder for an embedded PostgreSQL's data, outside pytest's temp folder: pgserver opens the
    folders above its data to the user it runs PostgreSQL as, and any pytest starting meanwhile (another
    checkout's run on this machine) closes /tmp/pytest-of-<user> again, cutting PostgreSQL off its files."""
    folder = Path(tempfile.mkdtemp(prefix="pitbox-test-pg-"))
    try:
        yield folder / "pg"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A folder for an embedded PostgreSQL of this test alone (`embedded_postgres_dir`)."""
    with embedded_postgres_dir() as folder:
        yield folder


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server for the run: TEST_DATABASE_URL, else an embedded one in a temp dir."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    import pgserver

    with embedded_postgres_dir() as folder:
        server = pgserver.get_server(folder, cleanup_mode="stop")
        yield server.get_uri()
        server.cleanup()


async def create_database(server_url: str) -> str:
    """A new empty database on the server; returns its URL."""
    name = f"pitbox_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(server_url, name)


def _with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    scheme_host, _, _ = head.rpartition("/")
    return f"{scheme_host}/{name}{sep}{query}"


async def drop_database(server_url: str, database_url: str) -> None:
    """Drop a test database (closing other connections first)."""
    name = database_url.partition("?")[0].rpartition("/")[2]
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh database for this test run."""
    url = await create_database(pg_server_url)
    yield url
    await drop_database(pg_server_url, url)


class _SettingsFromArguments(Settings):
    """Settings taken from the arguments only: a test server does not pick up REDIS_URL, AI_AGENT_URL, … from
    the environment the tests run in."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: Any, init_settings: Any, **sources: Any
    ) -> tuple[Any, ...]:
        """Only the values given to the constructor."""
        return (init_settings,)


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test server: nothing from the environment or a .env file, a known JWT secret, loopback."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "jwt_secret": TEST_JWT_SECRET,
        "host": "127.0.0.1",
        "port": free_port(),
        "log_level": "warning",
        "cors_origins": ["http://dashboard.test"],
    }
    values.update(overrides)
    return _SettingsFromArguments(**values)


@dataclass
class RunningServer:
    """A real server on loopback, with its services for building test data."""

    url: str
    ws_url: str
    services: Services
    settings: Settings


def _listening_on(port: int) -> socket.socket | None:
    """A socket bound to 127.0.0.1:`port`, or None when that port was taken meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


@contextlib.asynccontextmanager
async def run_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """Start the app under uvicorn (configured as `pitbox serve` is) in this event loop; stop it (lifespan
    shutdown included) on exit. Its port is bound first: another process on a busy machine may have taken the
    free port picked for the settings, and then the server moves to another one."""
    sock = _listening_on(settings.port)
    while sock is None:
        settings = settings.model_copy(update={"port": free_port()})
        sock = _listening_on(settings.port)
    app = create_app(settings)
    server = make_server(app, settings)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{settings.port}"
    try:
        yield RunningServer(base, f"ws://127.0.0.1:{settings.port}", app.state.services, settings)
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture(scope="session")
async def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """The shared test server."""
    settings = make_settings(database_url, tmp_path_factory.mktemp("data"))
    async with run_server(settings) as running:
        yield running


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the test server."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http


@dataclass
class Actor:
    """A user with a token (or an API key), ready to call the API."""

    id: str
    email: str
    role: str
    token: str
    driver_id: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Authorization headers for this actor."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Team:
    """A team with a manager, an engineer and two drivers."""

    id: str
    manager: Actor
    engineer: Actor
    driver: Actor
    driver2: Actor


class World:
    """Builds users and teams through the real services (the same code the CLI uses)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def user(self, role: str, team_id: str | None = None, password: str | None = None) -> Actor:
        """A new user with a token."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@pitbox.test"
        created = await self.services.users.create_user(
            email, role, password=password, team_id=uuid.UUID(team_id) if team_id else None
        )
        token, _ = self.services.logins.issue_token(uuid.UUID(created["id"]))
        return Actor(created["id"], email, role, token, created.get("driverId"))

    async def team(self) -> Team:
        """A new team with its people."""
        manager = await self.user("manager")
        from pitbox.auth.principal import Principal

        principal = Principal(kind="user", user_id=uuid.UUID(manager.id), role="manager")
        team = await self.services.teams.create_team(principal, f"Team {uuid.uuid4().hex[:6]}")
        team_id = str(team.id)
        engineer = await self.user("engineer", team_id)
        driver = await self.user("driver", team_id)
        driver2 = await self.user("driver", team_id)
        return Team(team_id, manager, engineer, driver, driver2)

    async def api_key(
        self, *, driver_id: str | None = None, team_id: str | None = None, scopes: list[str]
    ) -> str:
        """A new API key's plaintext."""
        created = await self.services.keys.create_key(
            None,
            scopes=scopes,
            driver_id=uuid.UUID(driver_id) if driver_id else None,
            team_id=uuid.UUID(team_id) if team_id else None,
        )
        return str(created["key"])


@pytest.fixture
def world(server: RunningServer) -> World:
    """The world builder on the shared server."""
    return World(server.services)


@pytest.fixture
async def admin(world: World) -> Actor:
    """An admin user."""
    return await world.user("admin")


@pytest.fixture
async def team(world: World) -> Team:
    """A fresh team."""
    return await world.team()


@pytest.fixture
async def other_team(world: World) -> Team:
    """A second team whose members must not see the first's data."""
    return await world.team()


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error in the one shape, with this status (and code)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    error: dict[str, Any] = body["error"]
    return error


async def pitbox_cli(
    server: RunningServer, *args: str, stdin: str | None = None, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `pitbox *args` on the server's database (and `env`'s settings) in a process of its own."""
    settings = {
        **os.environ,
        "DATABASE_URL": str(server.settings.database_url),
        "JWT_SECRET": str(server.settings.jwt_secret),
        "DATA_DIR": str(server.settings.data_dir),
        "LOG_LEVEL": "info",
        **(env or {}),
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pitbox", *args],
        env={name: value for name, value in settings.items() if value is not None},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
