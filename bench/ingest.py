"""End-to-end telemetry ingest: samples/s through POST /api/telemetry against, in the same run, orjson decoding
the same bodies and raw asyncpg COPY of the same rows (one wide row per sample), as ratios; bytes on disk per
sample of the stored chunks.

Data: the three real Langley recordings (40 common channels, ../shared/data) repeated to the wanted length
on a continuous clock, values rounded to 5 decimals as a driver app would send them. The server runs as a
separate `pitbox serve` process on an embedded PostgreSQL in a temp dir; several clients post concurrently,
each for its own driver and session with its own API key.

    PYTHONPATH=src python bench/ingest.py [--quick] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from codec import DATA, STAMPS, Columns, read_recording  # noqa: E402
from local_server import local_server  # noqa: E402

from pitbox.app import build_services  # noqa: E402
from pitbox.config import Settings  # noqa: E402


def telemetry_stream(samples: int) -> Columns:
    """`samples` samples of the 40 common channels: the real recordings end to end, repeated, t continuous."""
    recordings = [
        read_recording(DATA / f"skmodified_langley 2015-05-28 {stamp}.ibt", all_channels=False)
        for stamp in STAMPS
    ]
    joined = {name: np.concatenate([rec[name] for rec in recordings]) for name in recordings[0]}
    reps = -(-samples // len(joined["t"]))
    columns = {name: np.round(np.tile(values, reps)[:samples], 5) for name, values in joined.items()}
    columns["t"] = np.round(np.arange(samples) / 60.0, 6)
    for name in ("lat", "lon"):
        columns[name] = np.tile(joined[name], reps)[:samples]
    return columns


def rows_of(columns: Columns, start: int, stop: int) -> list[dict[str, float]]:
    """Row-wise samples of a slice (NaN left out, as a JSON client must)."""
    names = list(columns)
    matrix = np.stack([columns[name][start:stop] for name in names], axis=1).tolist()
    return [{n: v for n, v in zip(names, row, strict=True) if v == v} for row in matrix]


def bodies_for(columns: Columns, batch: int, driver_id: str, session_id: str) -> list[bytes]:
    """POST bodies of `batch` samples each, numbered with `seq`."""
    total = len(columns["t"])
    return [
        orjson.dumps(
            {
                "driverId": driver_id,
                "sessionId": session_id,
                "seq": seq,
                "samples": rows_of(columns, s, s + batch),
            }
        )
        for seq, s in enumerate(range(0, total, batch))
    ]


@dataclass
class Bench:
    """A running database and server, and the URL of both."""

    database_url: str
    base_url: str
    settings: Settings


@contextlib.asynccontextmanager
async def bench_server(workdir: Path) -> AsyncIterator[Bench]:
    """An embedded PostgreSQL in `workdir` and `pitbox serve` on it (migrations applied)."""
    # The bench drives ~100 times faster than a car laps, so live coaching would be measured instead of ingest;
    # coaching has its own bench (bench/coaching.py).
    async with local_server(workdir, LIVE_COACHING="false") as server:
        yield Bench(server.database_url, server.base, server.settings)


async def drivers_with_sessions(settings: Settings, count: int) -> list[tuple[str, str, str]]:
    """(driverId, sessionId, API key) for `count` new drivers, through the real services."""
    from pitbox.sessions.models import SessionCreate

    made = []
    async with build_services(settings) as services:
        for _ in range(count):
            user = await services.auth.create_user(f"bench-{uuid.uuid4().hex[:8]}@pitbox.test", "driver")
            driver_id = uuid.UUID(user["driverId"])
            key = await services.auth.create_key(
                None, scopes=["telemetry:write", "sessions:write"], driver_id=driver_id
            )
            principal = await services.auth.authenticate(key["key"])
            session = await services.sessions.create(
                principal, SessionCreate(driverId=driver_id, name="bench", car="SK Modified")
            )
            made.append((str(driver_id), session["id"], str(key["key"])))
    return made


async def http_ingest(base_url: str, per_client: list[tuple[str, list[bytes]]]) -> float:
    """Seconds to POST every body, each client's bodies in order, all clients at once."""

    async def client_run(key: str, bodies: list[bytes]) -> None:
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            for body in bodies:
                response = await client.post("/api/telemetry", content=body, headers=headers)
                if response.status_code != 201:
                    raise SystemExit(f"ingest failed: {response.status_code} {response.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(client_run(key, bodies) for key, bodies in per_client))
    return time.perf_counter() - started


def decode_only(bodies: list[bytes], passes: int = 3) -> float:
    """Seconds orjson takes to decode the bodies (one core), the best of `passes` (the machine is shared: the
    fastest pass is the least disturbed, which makes the baseline strict)."""
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for body in bodies:
            orjson.loads(body)
        best = min(best, time.perf_counter() - started)
    return best


async def copy_rows(database_url: str, columns: Columns, batch: int, clients: int) -> tuple[float, float]:
    """Seconds to COPY one wide row per sample (double precision columns) in `batch`-row batches, `clients`
    connections at once, each its own copy of the stream; and the table's bytes per sample."""
    names = list(columns)
    matrix = np.stack([columns[name] for name in names], axis=1)
    matrix = np.where(np.isnan(matrix), None, matrix).tolist()
    conn = await asyncpg.connect(database_url)
    cols = ", ".join(f'"{name}" double precision' for name in names)
    await conn.execute(
        f"DROP TABLE IF EXISTS wide_bench; CREATE TABLE wide_bench (session_id uuid NOT NULL, {cols})"
    )
    await conn.close()

    async def one(session: uuid.UUID) -> None:
        records = [(session, *row) for row in matrix]
        c = await asyncpg.connect(database_url)
        try:
            for start in range(0, len(records), batch):
                await c.copy_records_to_table(
                    "wide_bench", records=records[start : start + batch], columns=["session_id", *names]
                )
        finally:
            await c.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(uuid.uuid4()) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    conn = await asyncpg.connect(database_url)
    size = await conn.fetchval("SELECT pg_total_relation_size('wide_bench')")
    await conn.execute("DROP TABLE wide_bench")
    await conn.close()
    return elapsed, size / (len(matrix) * clients)


async def stored_size(database_url: str) -> tuple[int, int]:
    """pg_total_relation_size of telemetry_data (heap, TOAST and indexes) and the samples it holds."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("VACUUM ANALYZE telemetry_data")
        size = await conn.fetchval("SELECT pg_total_relation_size('telemetry_data')")
        samples = await conn.fetchval("SELECT coalesce(sum(sample_count), 0) FROM telemetry_data")
    finally:
        await conn.close()
    return int(size), int(samples)


async def run(samples: int, clients: int, repeats: int) -> None:
    columns = telemetry_stream(samples)
    print(
        f"{samples:,} samples x {len(columns)} channels per client, {clients} concurrent clients, best of {repeats}"
    )
    with tempfile.TemporaryDirectory(prefix="pitbox-bench-") as tmp:
        async with bench_server(Path(tmp)) as bench:
            table = []
            stored: dict[int, tuple[int, int]] = {}  # batch size -> (bytes, samples) its runs added
            for batch in (600, 60):
                before = await stored_size(bench.database_url)
                http_best = decode_best = copy_best = float("inf")
                wide_bps = 0.0
                for _ in range(repeats):
                    made = await drivers_with_sessions(bench.settings, clients)
                    per_client = [(key, bodies_for(columns, batch, d, s)) for d, s, key in made]
                    http_best = min(http_best, await http_ingest(bench.base_url, per_client))
                    decode_best = min(decode_best, sum(decode_only(bodies) for _, bodies in per_client))
                    copy_s, wide_bps = await copy_rows(bench.database_url, columns, batch, clients)
                    copy_best = min(copy_best, copy_s)
                total = samples * clients
                table.append((batch, total / http_best, total / decode_best, total / copy_best, wide_bps))
                after = await stored_size(bench.database_url)
                stored[batch] = (after[0] - before[0], after[1] - before[1])
            all_bytes, all_samples = await stored_size(bench.database_url)
    print(
        f"\n{'batch':>6} {'HTTP samples/s':>15} {'orjson decode/s':>16} {'COPY wide rows/s':>17} "
        f"{'HTTP/decode':>12} {'HTTP/COPY':>10}"
    )
    for batch, http_rate, decode_rate, copy_rate, _ in table:
        print(
            f"{batch:>6} {http_rate:>15,.0f} {decode_rate:>16,.0f} {copy_rate:>17,.0f} "
            f"{http_rate / decode_rate:>12.2f} {http_rate / copy_rate:>10.2f}"
        )
    per_batch = ", ".join(
        f"{batch}-sample batches {size / count:.1f} B" for batch, (size, count) in stored.items()
    )
    print(
        f"\nbytes on disk per sample (telemetry_data with TOAST and indexes): {per_batch}; "
        f"all batches {all_bytes / all_samples:.1f} B; wide rows (COPY table) {table[0][4]:.1f} B"
    )
    print("target: HTTP/decode >= 0.50 for 600-sample batches; <= 64 B per 40-channel sample")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer samples and one repeat")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"recordings not found in {DATA}: ../shared/data must be beside the checkout")
    samples, repeats = (30_000, 1) if args.quick else (108_000, 3)
    asyncio.run(run(samples, args.clients, repeats))


if __name__ == "__main__":
    main()
