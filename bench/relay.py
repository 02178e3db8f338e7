"""The relay agent: decode rate per source, relay CPU for one 60 Hz stream, and sim packet -> dashboard latency.

Run: `python bench/relay.py --quick` (8 s streams) or without --quick (30 s streams), `--runs N` to repeat
the streams. Needs ../shared/data.

1. Decode: every datagram of each real capture through a fresh decoder (onto canonical channels), on one
   core, against 100 x the sim's packet rate (F1 at 60 Hz sends ~6 packet kinds a frame: 360/s).
2. A `pitbox relay forza` process fed the Forza capture at its recorded pace (60 Hz) by a simulated sim,
   sending to a `pitbox serve` process; a dashboard socket subscribed to the driver's telemetry channel
   times each sample from the datagram that carried it to the frame that shows it. Once with 1 s batches
   (HTTP), once with --live (WebSocket). Relay CPU is its process's user+system time over the stream,
   per wall-clock second (so other load on the machine matters little); the load average is shown beside.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_server import free_port, local_server

from pitbox.app import build_services
from pitbox.client import PitboxClient
from pitbox.config import Settings
from pitbox.relay.capture import Datagram, read_capture
from pitbox.relay.sources import make_decoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: source, capture, the sim's packet rate (datagrams a second when running at 60 Hz).
CAPTURES = [
    ("f1", "f1_24_udp/monza_time_trial_clip.raw", 360.0),
    ("forza", "forza_motorsport/hakone_skyline_gtr_dash.raw", 60.0),
    ("codemasters", "dirt_rally_2/noorinbee_ridge_descent_r5_turbo_199s.raw", 60.0),
    ("codemasters", "udp_captures_vthinsel/DirtRallye.bin.raw", 60.0),
    ("ac", "udp_captures_vthinsel/AssettoCorsa_monza_A8LMS.raw", 60.0),
    ("pcars", "udp_captures_vthinsel/pcars.bin.raw", 60.0),
]
FORZA = "forza_motorsport/hakone_skyline_gtr_dash.raw"


def decode_rates(rounds: int) -> None:
    """Datagrams decoded a second per source, and the ratio to 100 x the sim's rate."""
    print("| source | capture | datagrams/s (one core) | sim rate | ratio to 100 x sim rate |")
    print("|---|---|---|---|---|")
    for source, relative, sim_rate in CAPTURES:
        datagrams = [d.payload for d in read_capture(DATA / relative)]
        best = 0.0
        for _ in range(rounds):
            decoder = make_decoder(source)
            started = time.process_time()
            for payload in datagrams:
                decoder.decode(payload)
            elapsed = time.process_time() - started
            best = max(best, len(datagrams) / elapsed)
        print(
            f"| {source} | {Path(relative).name} | {best:,.0f} | {sim_rate:.0f} | {best / (100 * sim_rate):.2f} |"
        )


async def _driver_key(settings: Settings) -> tuple[str, str]:
    async with build_services(settings) as services:
        user = await services.users.create_user(f"bench-{uuid.uuid4().hex[:8]}@pitbox.test", "driver")
        key = await services.keys.create_key(
            None,
            scopes=["telemetry:write", "telemetry:read", "sessions:write", "sessions:read"],
            driver_id=uuid.UUID(user["driverId"]),
        )
        return str(user["driverId"]), str(key["key"])


async def stream(
    server_url: str, settings: Settings, datagrams: list[Datagram], *, live: bool, workdir: Path
) -> None:
    """One relay process, one 60 Hz stream: relay CPU and packet -> dashboard latency."""
    driver, key = await _driver_key(settings)
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "pitbox",
        "relay",
        "forza",
        "--server",
        server_url,
        "--key",
        key,
        "--listen",
        f"127.0.0.1:{port}",
        "--spool",
        str(workdir / f"spool-{live}"),
        "--quiet",
    ]
    relay = subprocess.Popen([*args, "--live"] if live else args, env={**os.environ, "LOG_LEVEL": "warning"})  # noqa: ASYNC220
    first_stamp = struct.unpack_from("<I", datagrams[0].payload, 4)[0]
    sent_at: dict[float, float] = {}
    latencies: list[float] = []
    try:
        async with (
            PitboxClient(server_url, token=key) as client,
            client.subscribe([f"telemetry:{driver}"]) as socket,
        ):
            proc = psutil.Process(relay.pid)
            for _ in iter(
                lambda: any(c.laddr and c.laddr.port == port for c in proc.net_connections(kind="udp")), True
            ):
                await asyncio.sleep(0.1)  # the relay process starts (imports: a second of CPU not counted)
            await asyncio.sleep(1.0)
            idle_before, idle_started = sum(proc.cpu_times()[:2]), time.perf_counter()
            await asyncio.sleep(3.0)
            idle = (sum(proc.cpu_times()[:2]) - idle_before) / (time.perf_counter() - idle_started) * 100
            times_before = proc.cpu_times()
            load = os.getloadavg()[0]
            started = time.perf_counter()

            async def sim() -> None:
                loop = asyncio.get_running_loop()
                transport, _ = await loop.create_datagram_endpoint(
                    asyncio.DatagramProtocol, remote_addr=("127.0.0.1", port)
                )
                due = time.perf_counter()
                for datagram in datagrams:
                    due += datagram.delta_s
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    stamp = struct.unpack_from("<I", datagram.payload, 4)[0]
                    sent_at[round((stamp - first_stamp) / 1000.0, 3)] = time.perf_counter()
                    transport.sendto(datagram.payload)
                transport.close()

            async def dashboard() -> None:
                while True:
                    message = await socket.receive()
                    now = time.perf_counter()
                    data = message["data"]
                    for t in data.get("columns", {}).get("t", []) if data.get("type") == "telemetry" else []:
                        at = sent_at.get(round(float(t), 3))
                        if at is not None:
                            latencies.append(now - at)

            watcher = asyncio.create_task(dashboard())
            await sim()
            elapsed = time.perf_counter() - started
            times = proc.cpu_times()
            user, system = times.user - times_before.user, times.system - times_before.system
            deadline = time.monotonic() + 5
            for _ in iter(lambda: len(latencies) >= len(datagrams) or time.monotonic() > deadline, True):
                await asyncio.sleep(0.1)  # the last frames arrive
            watcher.cancel()
    finally:
        relay.terminate()
        relay.wait(timeout=60)
    values = np.array(latencies) * 1000
    p50, p99 = np.percentile(values, [50, 99]) if len(values) else (float("nan"), float("nan"))
    mode = "--live (WebSocket)" if live else "1 s batches (HTTP)"
    share = (user + system) / elapsed * 100
    print(
        f"| {mode} | {load:.1f} | {len(datagrams)} | {len(values)}"
        f" | {share:.2f} % (ratio to 3 %: {share / 3:.2f}) | {user / elapsed * 100:.2f} / {system / elapsed * 100:.2f}"
        f" | {idle:.2f} % | {p50:.1f} | {p99:.1f}"
        + (f" (ratio to 150 ms: {p99 / 150:.2f})" if live else "")
        + " |",
        flush=True,
    )


async def streams(seconds: float, runs: int) -> None:
    datagrams = read_capture(DATA / FORZA)
    limit = int(seconds * 60)
    datagrams = (
        (datagrams * (limit // len(datagrams) + 1))[:limit] if limit > len(datagrams) else datagrams[:limit]
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with local_server(workdir, LIVE_COACHING="false") as server:
            print(
                "| mode | load avg | datagrams | samples timed | relay CPU (one core) | user / system %"
                " | relay CPU idle | p50 ms | p99 ms |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            for run in range(runs):
                for live in (False, True):
                    await stream(
                        server.base, server.settings, datagrams, live=live, workdir=workdir / f"run{run}"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="8 s streams, 3 decode rounds")
    parser.add_argument("--runs", type=int, default=1, help="repeat the two streams this many times")
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"{DATA} not found: the benchmark replays the real captures")
    decode_rates(3 if args.quick else 10)
    print()
    asyncio.run(streams(8.0 if args.quick else 30.0, max(args.runs, 1)))


if __name__ == "__main__":
    main()
