"""Benchmark of coaching latency: lap end -> feedback stored and published, with the built-in analyst.

Ingests the real Langley recordings (../shared/data) into an embedded PostgreSQL through the real services,
then, for every valid lap, measures (1) the analyst alone on in-memory laps, (2) `coach_stored_lap` (read
both laps back from the chunks, analyse, store, publish) and (3) the live path: `on_lap_completed` -> the
background worker -> the stored row's `latency_ms`. Prints p50/p95 and the ratio to the 300 ms target.

    PYTHONPATH=src python bench/coaching.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from pgserver.postgres_server import get_server  # the package re-exports it implicitly (no __all__)

from pitbox.app import build_services
from pitbox.coaching.analyst import analyse_lap
from pitbox.config import Settings
from pitbox.recordings import open_recording
from pitbox.sessions.models import SessionCreate
from pitbox.telemetry.compare import lap_samples
from pitbox.telemetry.laps import detect_laps

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "iracing_ibt" / "robrobertsce"
STAMPS = ("14-46-23", "14-48-39", "14-50-46")
CHANNELS = ("t", "lap", "lapDistPct", "lapDist", "speed", "throttle", "brake", "gear", "steering", "rpm")
TARGET_P95_MS = 300.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`."""
    return float(np.percentile(np.asarray(values), q))


def row(name: str, samples_ms: list[float]) -> str:
    """One table line: stage, count, p50, p95, max, p95 / target."""
    p50, p95 = percentile(samples_ms, 50), percentile(samples_ms, 95)
    return (
        f"| {name:<44} | {len(samples_ms):>4} | {p50:>8.1f} | {p95:>8.1f} | {max(samples_ms):>8.1f} "
        f"| {p95 / TARGET_P95_MS:>6.2f} |"
    )


async def run(repeats: int) -> None:
    recordings = [open_recording(DATA / f"skmodified_langley 2015-05-28 {stamp}.ibt") for stamp in STAMPS]
    columns = [
        {name: np.asarray(r.channels[name], dtype=np.float64) for name in CHANNELS} for r in recordings
    ]

    laps = [(lap, lap_samples(c, lap)) for c in columns for lap in detect_laps(c) if lap.valid]
    best = min(laps, key=lambda pair: pair[0].lap_time)
    analyst_ms = []
    for _ in range(repeats):
        for lap, samples in laps:
            started = time.perf_counter()
            analyse_lap(samples, best[1], lap_number=lap.number)
            analyst_ms.append((time.perf_counter() - started) * 1000)

    with tempfile.TemporaryDirectory() as workdir:
        database = get_server(Path(workdir) / "pg", cleanup_mode="stop")
        settings = Settings(
            _env_file=None,
            database_url=database.get_uri(),
            data_dir=Path(workdir) / "data",
            log_level="warning",
            ingest_processes=0,  # laps go in through ingest_message, in this process
        )
        try:
            async with build_services(settings) as services:
                coaching = services.coaching
                assert coaching is not None
                user = await services.users.create_user(f"bench-{uuid.uuid4().hex[:8]}@pitbox.test", "admin")
                token, _ = services.logins.issue_token(uuid.UUID(user["id"]))
                principal = await services.credentials.authenticate(token)
                driver = await services.users.create_user(
                    f"driver-{uuid.uuid4().hex[:8]}@pitbox.test", "driver"
                )
                driver_id = uuid.UUID(driver["driverId"])
                session = await services.sessions.create(
                    principal, SessionCreate(driver_id=driver_id, name="bench", car="SK Modified")
                )
                session_id = session.id
                offset = 0.0
                for number, c in enumerate(columns):
                    shifted = {**c, "t": c["t"] + offset}  # one long session: three stints back to back
                    offset = float(shifted["t"][-1]) + 10.0
                    for start in range(0, shifted["t"].size, 600):
                        await services.telemetry.ingest_message(
                            principal,
                            {
                                "driverId": str(driver_id),
                                "sessionId": str(session_id),
                                "batchId": f"{number}-{start}",
                                "columns": {k: v[start : start + 600].tolist() for k, v in shifted.items()},
                            },
                        )
                stored = [lap for lap in await services.lap_reads.laps(principal, session_id) if lap.valid]
                direct_ms = []
                for _ in range(repeats):
                    for stored_lap in stored:
                        started = time.perf_counter()
                        await coaching.coach.coach_stored_lap(session_id, stored_lap.lap, started=started)
                        direct_ms.append((time.perf_counter() - started) * 1000)
                        await coaching.live.idle()  # let the spoken version finish before the next lap
                before = len(await coaching.pit_wall.session_feedback(principal, session_id, limit=1000))
                for _ in range(repeats):
                    for stored_lap in stored:
                        coaching.live.on_lap_completed(session_id, driver_id, stored_lap.lap)
                        await coaching.live.idle()
                feedback = await coaching.pit_wall.session_feedback(principal, session_id, limit=1000)
                live_ms = [float(item["latencyMs"]) for item in feedback[before:]]
        finally:
            database.cleanup()

    print(
        f"coaching latency, {len(stored)} valid Langley laps x {repeats} (target p95 < {TARGET_P95_MS:.0f} ms)"
    )
    print(
        "| stage                                        |    n |  p50 ms  |  p95 ms  |  max ms  | p95/target |"
    )
    print("|----------------------------------------------|------|----------|----------|----------|--------|")
    print(row("analyst only (in memory)", analyst_ms))
    print(row("coach_stored_lap (read, analyse, store, pub)", direct_ms))
    print(row("live: on_lap_completed -> stored + published", live_ms))
    print(f"median feedback items: {statistics.median(len(item['items']) for item in feedback):.0f}")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one pass instead of five")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"real recordings not found at {DATA.resolve()}")
    asyncio.run(run(1 if args.quick else 5))


if __name__ == "__main__":
    main()
