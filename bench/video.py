"""Video ingest benchmark: frames/s accepted for ~100 KB 1280x720 JPEGs, sent as base64 JSON and as raw bytes.

A real server (`python -m pitbox serve`: uvicorn, uvloop, httptools) runs in its own process against DATABASE_URL,
else an embedded PostgreSQL in a temp directory; DATA_DIR is a temp directory. C concurrent HTTP/1.1 clients in
this process each upload distinct frames (one JPEG with a counter in a comment segment, so nothing is deduplicated)
as fast as the server answers. Every frame is fully checked (magic bytes, header dimensions, Pillow verify and
decode), hashed, written atomically, indexed in PostgreSQL and published on `video:<driverId>`.
Prints frames/s, MB/s of image, latency p50/p99 and server CPU (share of one core) per case, and each base64
case's ratio to the binary one (the baseline). A `status` row (GET /api/status, same clients and token) shows
the floor of one authenticated request on this machine. `--quick`: 1 and 4 clients, 3 s each; else 1, 4, 16 for 10 s.

Usage: PYTHONPATH=src python bench/video.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve()
SRC = HERE.parents[1] / "src"
JWT_SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
TARGET_BYTES = 100 * 1024


def frame_jpeg(target_bytes: int = TARGET_BYTES) -> bytes:
    """A 1280x720 JPEG of shapes and grain, at the quality that brings it closest to `target_bytes`."""
    rng = random.Random(7)
    image = Image.new("RGB", (1280, 720), (90, 110, 130))
    draw = ImageDraw.Draw(image)
    for _ in range(400):
        x, y = rng.randrange(1280), rng.randrange(720)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.rectangle((x, y, x + rng.randrange(10, 200), y + rng.randrange(5, 80)), fill=colour)
    grain = Image.frombytes("L", (1280, 720), rng.randbytes(1280 * 720)).convert("RGB")
    image = Image.blend(image, grain, 0.08)
    best = b""
    for quality in range(30, 96, 3):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality)
        if not best or abs(len(out.getvalue()) - target_bytes) < abs(len(best) - target_bytes):
            best = out.getvalue()
    return best


def numbered(jpeg: bytes, n: int) -> bytes:
    """The same picture with a comment segment holding `n`: a distinct file (and sha256) for every upload."""
    text = f"frame {n:012d}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def database_url(tmp: Path) -> Iterator[str]:
    """DATABASE_URL, or an embedded PostgreSQL for the run."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    import pgserver

    server = pgserver.get_server(tmp / "pg", cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@dataclass
class World:
    """What the clients need: the driver, a session and a token."""

    driver_id: str
    session_id: str
    token: str


async def build_world(env: dict[str, str], base_url: str) -> World:
    """A driver with a token (through the services, as the CLI does) and a session (over HTTP)."""
    from pitbox.app import build_services
    from pitbox.config import Settings

    settings = Settings(
        _env_file=None,
        database_url=env["DATABASE_URL"],
        data_dir=Path(env["DATA_DIR"]),
        jwt_secret=JWT_SECRET,
    )
    async with build_services(settings) as services:
        created = await services.users.create_user(f"bench-{uuid.uuid4().hex[:8]}@pitbox.test", "driver")
        token, _ = services.logins.issue_token(uuid.UUID(created["id"]), timedelta(hours=2))
    driver_id = str(created["driverId"])
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post(
            "/api/sessions",
            json={"driverId": driver_id, "name": "video bench"},
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
    return World(driver_id, response.json()["id"], str(token))


@contextlib.asynccontextmanager
async def running_server(env: dict[str, str], port: int) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`python -m pitbox serve` in its own process, until the block ends."""
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, outside the measured part
        [sys.executable, "-m", "pitbox", "serve", "--port", str(port), "--host", "127.0.0.1"], env=env
    )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"http://127.0.0.1:{port}/health")).status_code < 500:
                        break
                if proc.poll() is not None:
                    raise RuntimeError("the server exited during start-up")
                await asyncio.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Outcome:
    form: str
    clients: int
    frames: int
    seconds: float
    latencies: list[float]
    cpu: float
    image_bytes: int

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds


async def measure(
    base_url: str, world: World, jpeg: bytes, form: str, clients: int, seconds: float, pid: int, start_n: int
) -> Outcome:
    """Upload as fast as answered with `clients` concurrent clients for `seconds`."""
    counter = iter(range(start_n, start_n + 10_000_000))
    latencies: list[float] = []
    stamp = datetime.now(UTC).isoformat()
    headers = {"Authorization": f"Bearer {world.token}"}
    binary_headers = {**headers, "Content-Type": "image/jpeg"}
    params = {"driverId": world.driver_id, "sessionId": world.session_id, "timestamp": stamp}

    async def client(deadline: float) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            while time.perf_counter() < deadline:
                image = numbered(jpeg, next(counter))
                started = time.perf_counter()
                if form == "base64":
                    body = {
                        "driverId": world.driver_id,
                        "sessionId": world.session_id,
                        "frameData": base64.b64encode(image).decode(),
                        "timestamp": stamp,
                    }
                    response = await http.post(
                        "/api/video",
                        content=orjson.dumps(body),
                        headers={**headers, "Content-Type": "application/json"},
                    )
                else:
                    response = await http.post(
                        "/api/video", params=params, content=image, headers=binary_headers
                    )
                if response.status_code != 201:
                    raise RuntimeError(f"upload answered {response.status_code}: {response.text[:300]}")
                latencies.append(time.perf_counter() - started)

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    await asyncio.gather(*(client(started + seconds) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    cpu = (cpu_seconds(pid) - cpu_before) / elapsed
    return Outcome(
        form, clients, len(latencies), elapsed, latencies, cpu, len(jpeg) if form != "status" else 0
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


def print_table(outcomes: list[Outcome]) -> None:
    print(
        f"\n{'form':<7} {'clients':>7} {'frames':>7} {'frames/s':>9} {'MB/s':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'srv cpu':>7} {'vs binary':>9}"
    )
    binary = {o.clients: o.frames_per_s for o in outcomes if o.form == "binary"}
    for o in outcomes:
        ratio = o.frames_per_s / binary[o.clients] if binary.get(o.clients) else 1.0
        print(
            f"{o.form:<7} {o.clients:>7} {o.frames:>7} {o.frames_per_s:>9.1f} "
            f"{o.frames_per_s * o.image_bytes / 1e6:>6.1f} {statistics.median(o.latencies) * 1000:>7.1f} "
            f"{percentile(o.latencies, 0.99) * 1000:>7.1f} {o.cpu:>7.2f} {ratio:>8.2f}x"
        )


async def run(quick: bool) -> None:
    jpeg = frame_jpeg()
    print(
        f"frame: 1280x720 JPEG, {len(jpeg)} bytes ({len(base64.b64encode(jpeg))} as base64); cpus: {os.cpu_count()}"
    )
    seconds = 3.0 if quick else 10.0
    client_counts = [1, 4] if quick else [1, 4, 16]
    with tempfile.TemporaryDirectory(prefix="pitbox-bench-video-") as tmp, database_url(Path(tmp)) as db_url:
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "DATABASE_URL": db_url,
            "DATA_DIR": str(Path(tmp) / "data"),
            "JWT_SECRET": JWT_SECRET,
            "LOG_LEVEL": "warning",
        }
        base_url = f"http://127.0.0.1:{port}"
        async with running_server(env, port) as proc:
            world = await build_world(env, base_url)
            await measure(base_url, world, jpeg, "binary", 2, 1.0, proc.pid, 0)  # warm-up
            outcomes = []
            for index, clients in enumerate(client_counts):
                for number, form in enumerate(("binary", "base64", "status")):
                    start_n = (index * 3 + number + 1) * 1_000_000
                    outcomes.append(
                        await measure(base_url, world, jpeg, form, clients, seconds, proc.pid, start_n)
                    )
    print_table(outcomes)


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 and 4 clients, 3 s each")
    args = parser.parse_args()
    asyncio.run(run(args.quick))


if __name__ == "__main__":
    main()
