"""Reading telemetry back over HTTP: one lap (all channels, JSON), one hour (216,000 samples x 40 channels)
in full JSON pages, downsampled to 2,000 points per channel, and streamed as CSV and as Parquet (values/s;
Parquet only when pyarrow, the `parquet` extra, is installed).

The hour is the real Langley recordings repeated (see bench/ingest.py), ingested through the service, read
from a separate `pitbox serve` process on an embedded PostgreSQL. Median of the runs; the client
decodes JSON with orjson, so the figures are mostly the server's.

    PYTHONPATH=src python bench/read.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from codec import DATA
from ingest import bench_server, rows_of, telemetry_stream

from pitbox.app import build_services
from pitbox.config import Settings
from pitbox.sessions.models import SessionCreate

HOUR = 216_000


async def load_hour(bench_settings: Settings, samples: int) -> tuple[str, str]:
    """A driver's session holding `samples` samples; returns (sessionId, the driver's token)."""
    columns = telemetry_stream(samples)
    # Live coaching would analyse and speak every lap of the hour while the reads are measured.
    settings = bench_settings.model_copy(update={"live_coaching": False})
    async with build_services(settings) as services:
        user = await services.users.create_user(f"reader-{uuid.uuid4().hex[:8]}@pitbox.test", "driver")
        token, _ = services.logins.issue_token(uuid.UUID(user["id"]))
        principal = await services.credentials.authenticate(token)
        session = await services.sessions.create(
            principal, SessionCreate(driver_id=uuid.UUID(user["driverId"]), name="hour", car="SK Modified")
        )
        for seq, start in enumerate(range(0, samples, 600)):
            message = {
                "driverId": user["driverId"],
                "sessionId": str(session.id),
                "seq": seq,
                "samples": rows_of(columns, start, start + 600),
            }
            await services.telemetry.ingest_message(principal, message)
    return str(session.id), token


async def median_time(runs: int, action: Callable[[], Awaitable[object]]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def run(samples: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pitbox-bench-") as tmp:
        async with bench_server(Path(tmp)) as bench:
            session_id, token = await load_hour(bench.settings, samples)
            headers = {"Authorization": f"Bearer {token}"}
            url = f"/api/sessions/{session_id}/telemetry"
            async with httpx.AsyncClient(base_url=bench.base_url, headers=headers, timeout=120) as client:
                laps = (await client.get(f"/api/sessions/{session_id}/laps")).json()
                lap = next(lap["lap"] for lap in laps if lap["valid"])
                lap_page = (await client.get(url, params={"lap": lap})).json()
                channels = len(lap_page["channels"])

                async def one_lap() -> None:
                    orjson.loads((await client.get(url, params={"lap": lap})).content)

                async def hour_json() -> None:
                    cursor: str | None = None
                    while True:
                        params: dict[str, str | int] = {
                            "limit": 100_000,
                            **({"cursor": cursor} if cursor else {}),
                        }
                        cursor = orjson.loads((await client.get(url, params=params)).content)["nextCursor"]
                        if cursor is None:
                            return

                async def hour_points() -> None:
                    orjson.loads((await client.get(url, params={"points": 2000})).content)

                csv_bytes = 0

                async def hour_csv() -> None:
                    nonlocal csv_bytes
                    csv_bytes = 0
                    async with client.stream("GET", url, params={"format": "csv"}) as response:
                        async for part in response.aiter_raw():
                            csv_bytes += len(part)

                parquet_bytes = 0

                async def hour_parquet() -> None:
                    nonlocal parquet_bytes
                    parquet_bytes = 0
                    async with client.stream("GET", url, params={"format": "parquet"}) as response:
                        if response.status_code != 200:
                            raise SystemExit(
                                f"parquet: {response.status_code} {(await response.aread())[:300]!r}"
                            )
                        async for part in response.aiter_raw():
                            parquet_bytes += len(part)

                results = [
                    (
                        f"one lap ({lap_page['count']} samples x {channels} channels), JSON",
                        await median_time(runs, one_lap),
                    ),
                    (
                        f"one hour ({samples:,} samples), JSON pages of 100,000",
                        await median_time(runs, hour_json),
                    ),
                    (
                        "one hour, downsampled to 2,000 points per channel",
                        await median_time(runs, hour_points),
                    ),
                    ("one hour, CSV streamed", await median_time(runs, hour_csv)),
                ]
                if importlib.util.find_spec("pyarrow") is not None:
                    results.append(("one hour, Parquet streamed", await median_time(runs, hour_parquet)))
    print(f"\n{'read':<58} {'ms':>9}")
    for label, seconds in results:
        print(f"{label:<58} {seconds * 1000:>9.1f}")
    values = samples * channels
    print(f"\nCSV: {values / results[3][1]:,.0f} values/s ({csv_bytes / 1e6:.1f} MB)")
    if len(results) > 4:
        print(f"Parquet: {values / results[4][1]:,.0f} values/s ({parquet_bytes / 1e6:.1f} MB)")
    print("targets: one lap < 50 ms; downsampled hour < 200 ms; CSV >= 1,000,000 values/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 5")
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"recordings not found in {DATA}: ../shared/data must be beside the checkout")
    asyncio.run(run(HOUR, 3 if args.quick else 5))


if __name__ == "__main__":
    main()
