"""Soak: 20 drivers ingesting at 60 Hz (a batch of 60 samples every second each) while 500 dashboard sockets
listen (maxRate 20), against a real `pitbox serve` process on an embedded PostgreSQL in a temp dir.

Samples the server's RSS every few seconds (is memory flat?), counts every error (non-2xx answers, transport
errors, sockets closed, batches a socket never heard), and records ingest latency (POST to ack) and delivery
latency (POST sent to the frame on a dashboard socket), p50/p99/max. Prints one table; exits 1 on any error.

    python bench/soak.py [--quick]        # --quick: 30 s; default 5 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import orjson
import psutil  # type: ignore[import-untyped]
import websockets

from pitbox.app import build_services
from pitbox.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_server import local_server

DRIVERS = 20
SOCKETS = 500
SOCKETS_PER_USER = 10
HZ = 60
MAX_RATE = 20.0
RSS_EVERY_S = 5.0
#: Time after the last batch for its frames to reach every socket before counting what was missed.
DRAIN_S = 5.0


def batch_body(driver_id: str, session_id: str, index: int) -> bytes:
    """Second `index` of a car at 60 Hz: eight channels, rows, batchId s-<index>."""
    t = index + np.arange(HZ) / HZ
    pct = (t / 90.0) % 1.0
    speed = 150 + 60 * np.sin(2 * np.pi * pct)
    rows = [
        {
            "t": round(float(t[i]), 6),
            "lapDistPct": round(float(pct[i]), 6),
            "speed": round(float(speed[i]), 3),
            "throttle": round(float(0.5 + 0.5 * math.cos(2 * math.pi * pct[i])), 4),
            "brake": round(float(max(0.0, -math.cos(2 * math.pi * pct[i]))), 4),
            "rpm": round(float(6000 + 30 * speed[i]), 1),
            "gear": float(3 + int(speed[i] // 50)),
            "steering": round(float(0.3 * math.sin(4 * math.pi * pct[i])), 4),
        }
        for i in range(HZ)
    ]
    return orjson.dumps(
        {"driverId": driver_id, "sessionId": session_id, "batchId": f"s-{index}", "samples": rows}
    )


@dataclass
class Tally:
    """Everything measured during the soak."""

    ingest_ms: list[float] = field(default_factory=list)
    delivery_ms: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)
    worker_cpu: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    sent_at: dict[tuple[str, int], float] = field(default_factory=dict)
    heard: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    batches_acked: int = 0
    server_buckets: list[tuple[float, float]] = field(default_factory=list)
    samples_acked: int = 0


@dataclass(frozen=True)
class Load:
    """How many drivers ingest and how many dashboard sockets listen."""

    drivers: int = DRIVERS
    sockets: int = SOCKETS

    @property
    def sockets_per_driver(self) -> int:
        """Sockets on each driver's channel (sockets are spread round-robin)."""
        return self.sockets // self.drivers


@dataclass
class Driver:
    """A driver's id, session and API key."""

    driver_id: str
    session_id: str
    key: str


@contextlib.asynccontextmanager
async def soak_server(workdir: Path) -> AsyncIterator[tuple[str, psutil.Process, Settings]]:
    """An embedded PostgreSQL and `pitbox serve` on it; yields the base URL, the server process, settings."""
    async with local_server(workdir) as server:
        yield server.base, psutil.Process(server.process.pid), server.settings


async def make_world(settings: Settings, load: Load) -> tuple[list[Driver], list[str]]:
    """The drivers (with sessions and API keys) and the dashboard users' tokens, through the real services."""
    from pitbox.sessions.models import SessionCreate

    drivers = []
    tokens = []
    async with build_services(settings) as services:
        for _ in range(load.drivers):
            user = await services.users.create_user(f"soak-{uuid.uuid4().hex[:8]}@pitbox.test", "driver")
            driver_id = uuid.UUID(user["driverId"])
            key = await services.keys.create_key(
                None, scopes=["telemetry:write", "sessions:write"], driver_id=driver_id
            )
            principal = await services.credentials.authenticate(key["key"])
            session = await services.sessions.create(
                principal, SessionCreate.model_validate({"driverId": driver_id, "name": "soak"})
            )
            drivers.append(Driver(str(driver_id), str(session.id), str(key["key"])))
        for _ in range(math.ceil(load.sockets / SOCKETS_PER_USER)):
            admin = await services.users.create_user(f"wall-{uuid.uuid4().hex[:8]}@pitbox.test", "admin")
            token, _ = services.logins.issue_token(uuid.UUID(admin["id"]))
            tokens.append(token)
    return drivers, tokens


async def dashboard(
    ws_url: str, token: str, driver_id: str, tally: Tally, ready: asyncio.Event, stop: asyncio.Event
) -> None:
    """One dashboard socket on one driver's telemetry at maxRate 20; notes when each batch arrives."""
    try:
        async with websockets.connect(f"{ws_url}/ws?token={quote(token)}", max_size=4 * 1024 * 1024) as ws:
            channel = f"telemetry:{driver_id}"
            await ws.send(
                orjson.dumps({"type": "subscribe", "channel": channel, "maxRate": MAX_RATE}).decode()
            )
            while True:
                frame = orjson.loads(await ws.recv())
                if frame.get("type") == "subscribed":
                    break
                if frame.get("type") == "error":
                    tally.errors[f"subscribe {frame.get('code')}"] += 1
                    return
            ready.set()
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
                except TimeoutError:
                    continue
                received = time.monotonic()
                frame = orjson.loads(raw)
                data = frame.get("data") or {}
                if frame.get("type") == "message" and data.get("type") == "telemetry":
                    key = (driver_id, int(data["tStart"]))
                    tally.heard[key] += 1
                    sent = tally.sent_at.get(key)
                    if sent is not None:
                        tally.delivery_ms.append((received - sent) * 1000)
    except (OSError, websockets.ConnectionClosed) as exc:
        if not stop.is_set():
            tally.errors[f"socket {type(exc).__name__}"] += 1


async def drive(base: str, driver: Driver, seconds: float, offset: float, tally: Tally) -> int:
    """Post one batch a second for `seconds` (on a fixed schedule, starting `offset` s in); batches sent."""
    headers = {"X-API-Key": driver.key, "Content-Type": "application/json"}
    loop = asyncio.get_running_loop()
    start = loop.time() + offset
    index = 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while index < seconds:
            await asyncio.sleep(max(0.0, start + index - loop.time()))
            body = batch_body(driver.driver_id, driver.session_id, index)
            sent = time.monotonic()
            tally.sent_at[(driver.driver_id, index)] = sent
            try:
                response = await http.post("/api/telemetry", content=body, headers=headers)
            except httpx.TransportError as exc:
                tally.errors[f"ingest {type(exc).__name__}"] += 1
            else:
                if response.status_code in (200, 201):
                    tally.ingest_ms.append((time.monotonic() - sent) * 1000)
                    tally.batches_acked += 1
                    tally.samples_acked += int(response.json()["samples"])
                else:
                    tally.errors[f"ingest {response.status_code}"] += 1
            index += 1
    return index


async def watch_server(process: psutil.Process, tally: Tally, stop: asyncio.Event) -> None:
    """RSS (server and its children) and CPU share (server process, its ingest workers) every RSS_EVERY_S
    seconds."""
    started = time.monotonic()
    client = psutil.Process()
    process.cpu_percent()
    client.cpu_percent()
    workers: dict[int, psutil.Process] = {}  # kept, so each one's cpu_percent() measures since the last call
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=RSS_EVERY_S)
        rss = process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
        tally.rss_mb.append((time.monotonic() - started, rss / 2**20))
        tally.cpu.append(process.cpu_percent())
        tally.client_cpu.append(client.cpu_percent())
        worker_cpu = 0.0
        for child in process.children():
            if child.pid not in workers:
                workers[child.pid] = child
                child.cpu_percent()
                continue
            with contextlib.suppress(psutil.Error):
                worker_cpu += workers[child.pid].cpu_percent()
        tally.worker_cpu.append(worker_cpu)


async def server_side_ingest_buckets(base: str) -> list[tuple[float, float]]:
    """(upper bound in s, cumulative count) of the server's own POST /api/telemetry latency histogram."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        text = (await http.get("/metrics")).text  # loopback may scrape without a token
    buckets = []
    for line in text.splitlines():
        is_bucket = line.startswith("pitbox_http_request_duration_seconds_bucket{")
        if is_bucket and 'route="/api/telemetry"' in line and 'method="POST"' in line:
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    return sorted(buckets)


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> str:
    """The histogram bucket holding the q-quantile, as `<= N ms`."""
    if not buckets or buckets[-1][1] == 0:
        return "n/a"
    total = buckets[-1][1]
    bound = next(b for b, count in buckets if count >= q * total)
    return "> 10 s" if math.isinf(bound) else f"<= {bound * 1000:g}"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile, NaN for no values."""
    return float(np.percentile(values, q)) if values else float("nan")


async def soak(seconds: float, load: Load) -> int:
    """Run the soak; print the table; the exit status (1 on any error)."""
    with tempfile.TemporaryDirectory(prefix="pitbox-soak-") as tmp:
        async with soak_server(Path(tmp)) as (base, process, settings):
            drivers, tokens = await make_world(settings, load)
            tally = Tally()
            stop_sockets = asyncio.Event()
            ready = [asyncio.Event() for _ in range(load.sockets)]
            ws_url = "ws" + base[4:]
            sockets = []
            for i in range(load.sockets):
                driver = drivers[i % load.drivers]
                sockets.append(
                    asyncio.create_task(
                        dashboard(
                            ws_url,
                            tokens[i // SOCKETS_PER_USER],
                            driver.driver_id,
                            tally,
                            ready[i],
                            stop_sockets,
                        )
                    )
                )
                if i % 50 == 49:
                    await asyncio.sleep(0.05)  # a browser wall does not open 500 sockets in one instant
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), timeout=120)
            stop_watch = asyncio.Event()
            watcher = asyncio.create_task(watch_server(process, tally, stop_watch))
            began = time.monotonic()
            sent = await asyncio.gather(
                *(
                    drive(base, d, seconds, offset=i / load.drivers, tally=tally)
                    for i, d in enumerate(drivers)
                )
            )
            elapsed = time.monotonic() - began
            await asyncio.sleep(DRAIN_S)  # the last frames are on their way
            stop_sockets.set()
            stop_watch.set()
            await asyncio.gather(*sockets, watcher)
            tally.server_buckets = await server_side_ingest_buckets(base)
    expected_per_batch = load.sockets_per_driver
    missed = sum(
        max(0, expected_per_batch - tally.heard[(d.driver_id, i)]) for d, n in zip(drivers, sent, strict=True)
        for i in range(n)
    )  # fmt: skip
    if missed:
        tally.errors["deliveries missed"] += missed
    report(seconds, elapsed, sum(sent), tally, load)
    return 1 if tally.errors else 0


def report(seconds: float, elapsed: float, batches: int, tally: Tally, load: Load) -> None:
    """Print the table."""
    rss = [mb for _, mb in tally.rss_mb]
    half = len(rss) // 2
    early, late = (float(np.mean(rss[:half])), float(np.mean(rss[half:]))) if half else (rss[0], rss[-1])
    print(f"\nSoak: {load.drivers} drivers x {HZ} Hz (a batch of {HZ} a second), {load.sockets} sockets at maxRate "
          f"{MAX_RATE:g}, {seconds:.0f} s (took {elapsed:.1f} s)")  # fmt: skip
    print("| measure | value |")
    print("|---|---|")
    rows = [
        ("batches sent / acked", f"{batches} / {tally.batches_acked}"),
        ("samples acked", f"{tally.samples_acked}"),
        ("ingest latency p50 / p99 / max (ms)",
         f"{pct(tally.ingest_ms, 50):.1f} / {pct(tally.ingest_ms, 99):.1f} / {max(tally.ingest_ms, default=0):.1f}"),
        ("server-side ingest time p50 / p99 (ms, histogram bucket)",
         f"{bucket_quantile(tally.server_buckets, 0.5)} / {bucket_quantile(tally.server_buckets, 0.99)}"),
        ("frames delivered", f"{len(tally.delivery_ms)} (expected {batches * load.sockets_per_driver})"),
        ("delivery latency p50 / p99 / max (ms)",
         f"{pct(tally.delivery_ms, 50):.1f} / {pct(tally.delivery_ms, 99):.1f} / "
         f"{max(tally.delivery_ms, default=0):.1f}"),
        ("server RSS first / max / last (MB)", f"{rss[0]:.1f} / {max(rss):.1f} / {rss[-1]:.1f}"),
        ("server RSS mean 1st half -> 2nd half (MB)", f"{early:.1f} -> {late:.1f} ({late - early:+.1f})"),
        ("server RSS growth over the 2nd half (MB)", f"{rss[-1] - rss[half]:+.1f}" if half else "n/a"),
        ("server CPU mean (% of one core)", f"{float(np.mean(tally.cpu)):.0f}"),
        ("ingest workers CPU mean (% of one core)", f"{float(np.mean(tally.worker_cpu)):.0f}"),
        ("load generator CPU mean (% of one core)", f"{float(np.mean(tally.client_cpu)):.0f}"),
        ("machine load average (1 min) at the end", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"),
        ("errors", ", ".join(f"{k}: {v}" for k, v in tally.errors.items()) or "none"),
    ]  # fmt: skip
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("RSS samples (s, MB): " + ", ".join(f"{t:.0f}:{mb:.0f}" for t, mb in tally.rss_mb))


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="30 s instead of 5 minutes")
    parser.add_argument("--seconds", type=float, default=None, help="length of the soak (overrides --quick)")
    parser.add_argument("--drivers", type=int, default=DRIVERS, help="drivers ingesting")
    parser.add_argument("--sockets", type=int, default=SOCKETS, help="dashboard sockets listening")
    args = parser.parse_args()
    seconds = args.seconds or (30.0 if args.quick else 300.0)
    raise SystemExit(asyncio.run(soak(seconds, Load(args.drivers, args.sockets))))


if __name__ == "__main__":
    main()
