"""`pitbox demo`: the server with its embedded defaults, a demo team, and a recording replayed in a loop.

The demo keeps its own DATA_DIR (default `./data-demo`) so its known login never lands in a real install.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import structlog

from pitbox.app import create_app
from pitbox.auth.principal import Principal
from pitbox.client import PitboxClient
from pitbox.config import Settings
from pitbox.errors import Conflict
from pitbox.recordings import open_recording
from pitbox.recordings.models import Recording
from pitbox.replay import replay_recording, session_fields
from pitbox.services import Services
from pitbox.serving import make_server

log = structlog.get_logger(__name__)

DEMO_EMAIL = "demo@pitbox.local"
DEFAULT_RECORDING = Path("..") / "shared" / "data" / "iracing_ibt" / "robrobertsce"
DEFAULT_RECORDING_FILE = "skmodified_langley 2015-05-28 14-46-23.ibt"


@dataclass(frozen=True)
class DemoWorld:
    """What the demo created: who to log in as and whose telemetry to watch."""

    email: str
    password: str
    token: str
    team_id: str
    driver_id: str


def synthetic_recording(laps: int = 3, rate_hz: float = 60.0) -> Recording:
    """A made-up 1.2 km stadium circuit (two straights, two hairpins), for when no real recording is at hand."""
    straight, radius = 400.0, 63.66
    length = 2 * straight + 2 * np.pi * radius
    s = np.linspace(0.0, laps * length, int(laps * length * 2))
    d = np.mod(s, length)
    in_corner = ((d > straight) & (d < straight + np.pi * radius)) | (d > 2 * straight + np.pi * radius)
    corner_speed, straight_speed = 95.0, 205.0
    target = np.where(in_corner, corner_speed, straight_speed)
    # Smooth the speed profile over ~60 m so braking and acceleration are gradual.
    kernel = np.ones(120) / 120
    speed = np.convolve(np.pad(target, 60, mode="edge"), kernel, mode="same")[60:-60]
    dt = np.diff(s, prepend=0.0) / np.maximum(speed / 3.6, 1.0)
    t_dist = np.cumsum(dt)
    t = np.arange(0.0, t_dist[-1], 1.0 / rate_hz)
    dist = np.interp(t, t_dist, s)
    lap_d = np.mod(dist, length)
    v = np.interp(t, t_dist, speed)
    accel = np.gradient(v, t)
    x, y = _stadium_xy(lap_d, straight, radius)
    corner = np.interp(t, t_dist, in_corner.astype(float))
    channels: dict[str, Any] = {
        "t": t,
        "lap": np.floor(dist / length).astype(np.int64) + 1,
        "lapDist": lap_d,
        "lapDistPct": lap_d / length,
        "speed": v,
        "throttle": np.clip(accel / 3 + 0.6 * (1 - corner), 0, 1),
        "brake": np.clip(-accel / 8, 0, 1),
        "steering": 0.35 * corner,
        "gear": np.clip((v // 40).astype(np.int64) + 1, 1, 6),
        "rpm": 3000 + (v % 40) * 120,
        "x": x,
        "y": y,
    }
    return Recording(
        source="synthetic",
        sample_rate_hz=rate_hz,
        channels=channels,
        track="PitBox Stadium",
        car="PitBox Demo Car",
    )


def _stadium_xy(d: Any, straight: float, radius: float) -> tuple[Any, Any]:
    x = np.empty_like(d)
    y = np.empty_like(d)
    a = d < straight
    x[a], y[a] = d[a], 0.0
    b = (d >= straight) & (d < straight + np.pi * radius)
    ang = (d[b] - straight) / radius
    x[b], y[b] = straight + radius * np.sin(ang), radius - radius * np.cos(ang)
    c = (d >= straight + np.pi * radius) & (d < 2 * straight + np.pi * radius)
    x[c], y[c] = straight - (d[c] - straight - np.pi * radius), 2 * radius
    e = d >= 2 * straight + np.pi * radius
    ang = (d[e] - 2 * straight - np.pi * radius) / radius
    x[e], y[e] = -radius * np.sin(ang), radius + radius * np.cos(ang)
    return x, y


def load_demo_recording(path: Path | None) -> Recording:
    """The given recording, else the Langley lap from ../shared/data if present, else a synthetic one."""
    if path is not None:
        return open_recording(path)
    candidate = DEFAULT_RECORDING / DEFAULT_RECORDING_FILE
    return open_recording(candidate) if candidate.exists() else synthetic_recording()


async def build_demo_world(services: Services, data_dir: Path) -> DemoWorld:
    """The demo manager, team and driver, created once and found again on later runs (the track and car come
    from the recording)."""
    credentials = data_dir / "demo_credentials.json"
    if credentials.exists():
        saved = orjson.loads(credentials.read_bytes())
        user = await services.users.resolve_user(saved["email"])
        token, _ = services.logins.issue_token(user["id"])
        return DemoWorld(saved["email"], saved["password"], token, saved["teamId"], saved["driverId"])
    password = secrets.token_urlsafe(12)
    try:
        created = await services.users.create_user(
            DEMO_EMAIL, "manager", password=password, display_name="Demo"
        )
    except Conflict:
        raise SystemExit(f"{DEMO_EMAIL} exists but {credentials} is gone: use a fresh --data-dir") from None
    manager = Principal(kind="user", user_id=uuid.UUID(created["id"]), role="manager")
    team = await services.teams.create_team(manager, "PitBox Demo Team")
    driver = await services.teams.create_driver(manager, "Demo Driver", None, team.id)
    credentials.write_bytes(
        orjson.dumps(
            {"email": DEMO_EMAIL, "password": password, "teamId": str(team.id), "driverId": str(driver.id)}
        )
    )
    credentials.chmod(0o600)
    token, _ = services.logins.issue_token(uuid.UUID(created["id"]))
    return DemoWorld(DEMO_EMAIL, password, token, str(team.id), str(driver.id))


async def run_demo(settings: Settings, recording: Recording, speed: float | None, announce: Any) -> None:
    """Serve, create the demo world, and replay `recording` in a loop until interrupted."""
    app = create_app(settings)
    server = make_server(app, settings)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.05)
    services: Services = app.state.services
    world = await build_demo_world(services, settings.data_dir)
    url = f"http://127.0.0.1:{settings.port}"
    announce(url, world)
    replaying = asyncio.create_task(_replay_forever(url, world, recording, speed))
    try:
        await serving  # returns when uvicorn is told to stop (Ctrl-C, SIGTERM)
    finally:
        replaying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replaying


async def _replay_forever(url: str, world: DemoWorld, recording: Recording, speed: float | None) -> None:
    """One session on the recording's track and car; each loop continues it in time, and its laps come under
    new numbers (lap detection never reuses one in a session), so loops never overwrite each other's laps."""
    async with PitboxClient(url, token=world.token) as client:
        session = await client.create_session(world.driver_id, "Demo session", **session_fields(recording))
        loop = 0
        while True:
            await replay_recording(
                client,
                recording,
                driver_id=world.driver_id,
                session_id=session["id"],
                speed=speed,
                t_offset=loop * (recording.duration_s + 1.0),
            )
            loop += 1
