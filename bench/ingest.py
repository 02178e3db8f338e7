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
import os
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
import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from codec import DATA, STAMPS, Columns, read_recording
from local_server import local_server

from pitbox.app import build_services
from pitbox.config import Settings


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
    pid: int  # the server process (its children are the ingest workers)
    database_dir: Path  # the embedded PostgreSQL's data folder (names its postmaster's command line)


@contextlib.asynccontextmanager
async def bench_server(workdir: Path) -> AsyncIterator[Bench]:
    """An embedded PostgreSQL in `workdir` and `pitbox serve` on it (migrations applied)."""
    # The bench drives ~100 times faster than a car laps, so live coaching would be measured instead of ingest;
    # coaching has its own bench (bench/coaching.py).
    # Compaction is off here so it does not disturb the timed phases; `steady_state_size` measures it apart.
    async with local_server(workdir, LIVE_COACHING="false", COMPACTION_INTERVAL_S="0") as server:
        yield Bench(server.database_url, server.base, server.settings, server.process.pid, workdir / "pg")


@dataclass(frozen=True)
class CpuPerBatch:
    """Milliseconds of CPU per batch: server process, ingest workers, PostgreSQL, and the whole machine (those,
    the bench client and everything else)."""

    server: float = 0.0
    workers: float = 0.0
    database: float = 0.0
    machine: float = 0.0

    def __str__(self) -> str:
        rest = self.machine - self.server - self.workers - self.database
        return (
            f"{self.machine:.2f} ms on the machine: {self.server:.2f} server process + {self.workers:.2f} ingest "
            f"workers + {self.database:.2f} PostgreSQL + {rest:.2f} client and the rest"
        )


class RunCpu:
    """CPU seconds spent from now on (psutil) by the server process, its ingest workers, the embedded
    PostgreSQL (postmaster and backends), and the whole machine (every core, busy time)."""

    def __init__(self, server_pid: int, database_dir: Path) -> None:
        self.server = psutil.Process(server_pid)
        # The postmaster is the `postgres` process started with `-D <data dir>` (its backends are its children).
        self.postmaster = next(
            process
            for process in psutil.process_iter(["name", "cmdline"])
            if process.info["name"] == "postgres"
            and "-D" in (process.info["cmdline"] or ())
            and str(database_dir) in " ".join(process.info["cmdline"] or ())
        )
        self.start = self._times()

    @staticmethod
    def _own(process: psutil.Process) -> float:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            return float(times.user + times.system)
        return 0.0

    def _times(self) -> tuple[float, float, float, float]:
        machine = psutil.cpu_times()
        return (
            self._own(self.server),
            sum(self._own(child) for child in self.server.children()),
            self._own(self.postmaster) + sum(self._own(child) for child in self.postmaster.children()),
            machine.user + machine.nice + machine.system + machine.irq + machine.softirq,
        )

    def ms_per(self, batches: int) -> CpuPerBatch:
        """Milliseconds of CPU per batch since this was made."""
        now = self._times()
        server, workers, database, machine = (
            1000 * (b - a) / batches for a, b in zip(self.start, now, strict=True)
        )
        return CpuPerBatch(server, workers, database, machine)


async def drivers_with_sessions(settings: Settings, count: int) -> list[tuple[str, str, str]]:
    """(driverId, sessionId, API key) for `count` new drivers, through the real services."""
    from pitbox.sessions.models import SessionCreate

    made = []
    async with build_services(settings.model_copy(update={"ingest_processes": 0})) as services:
        for _ in range(count):
            user = await services.users.create_user(f"bench-{uuid.uuid4().hex[:8]}@pitbox.test", "driver")
            driver_id = uuid.UUID(user["driverId"])
            key = await services.keys.create_key(
                None, scopes=["telemetry:write", "sessions:write"], driver_id=driver_id
            )
            principal = await services.credentials.authenticate(key["key"])
            session = await services.sessions.create(
                principal, SessionCreate(driver_id=driver_id, name="bench", car="SK Modified")
            )
            made.append((str(driver_id), str(session.id), str(key["key"])))
    return made


class _Poster:
    """A minimal HTTP/1.1 keep-alive client for one connection: the request bytes are built once per body and
    the answer is read by Content-Length, so the client spends next to nothing of the shared 2 cores (httpx
    took about a third of a core at these rates, measured here)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head)
        self.writer.write(body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)


async def http_ingest(base_url: str, per_client: list[tuple[str, list[bytes]]]) -> float:
    """Seconds to POST every body, each client's bodies in order on its own connection, all clients at once."""
    host, port = base_url.split("//", 1)[1].split(":")

    async def client_run(key: str, bodies: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        poster = _Poster(reader, writer)
        try:
            for body in bodies:
                head = (
                    f"POST /api/telemetry HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {key}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                status, answer = await poster.post(head, body)
                if status != 201:
                    raise SystemExit(f"ingest failed: {status} {answer[:300]!r}")
        finally:
            writer.close()

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
    stacked = np.stack([columns[name] for name in names], axis=1)
    # NaN -> None (SQL NULL). numpy's stubs reject a bare None in np.where, so pass it as an object array.
    null = np.array(None, dtype=object)
    matrix: list[list[float | None]] = np.where(np.isnan(stacked), null, stacked).tolist()
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


@dataclass(frozen=True)
class Stored:
    """Bytes on disk of the telemetry tables (heap, TOAST and indexes), of which the batch keys, and samples."""

    size: int
    batches_size: int
    samples: int

    def __sub__(self, before: Stored) -> Stored:
        return Stored(
            self.size - before.size, self.batches_size - before.batches_size, self.samples - before.samples
        )

    def per_sample(self) -> str:
        """Bytes per sample, with the batch keys' share."""
        return f"{self.size / self.samples:.1f} B (batch keys {self.batches_size / self.samples:.1f} B)"


async def stored_size(database_url: str) -> Stored:
    """pg_total_relation_size of telemetry_data and telemetry_batches after a VACUUM, and the samples stored.

    A (non-FULL) VACUUM, as autovacuum runs, makes the space of rows deleted by compaction reusable but leaves
    it counted in the table's size until new rows reuse it.
    """
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("VACUUM ANALYZE telemetry_data, telemetry_batches")
        size = await conn.fetchval("SELECT pg_total_relation_size('telemetry_data')")
        batches = await conn.fetchval("SELECT pg_total_relation_size('telemetry_batches')")
        samples = await conn.fetchval("SELECT coalesce(sum(sample_count), 0) FROM telemetry_data")
    finally:
        await conn.close()
    return Stored(int(size) + int(batches), int(batches), int(samples))


async def end_and_compact(bench: Bench, made: list[tuple[str, str, str]]) -> float:
    """End the sessions through the API and wait for the server's background compaction to merge their chunks
    (polling the database until none of them is pending); the seconds that took."""
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=bench.base_url, timeout=60) as client:
        for _, session_id, key in made:
            response = await client.post(f"/api/sessions/{session_id}/end", headers={"X-API-Key": key})
            if response.status_code != 200:
                raise SystemExit(f"ending a session failed: {response.status_code} {response.text[:300]}")
    ids = [uuid.UUID(session_id) for _, session_id, _ in made]
    conn = await asyncpg.connect(bench.database_url)
    try:
        pending = "SELECT count(*) FROM sessions WHERE id = ANY($1) AND compact_from_chunk IS NOT NULL"
        while await conn.fetchval(pending, ids):
            if time.perf_counter() - started > 1800:
                raise SystemExit("compaction did not finish within 30 minutes")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return time.perf_counter() - started


def segment_bodies(columns: Columns, segment: int, driver_id: str, session_id: str) -> list[bytes]:
    """A relay's 60-sample bodies for the `segment`-th repetition of `columns`, `t` and `seq` running on."""
    length = len(columns["t"])
    shifted = {**columns, "t": np.round(columns["t"] + segment * length / 60.0, 6)}
    first_seq = segment * -(-length // 60)
    return [
        orjson.dumps(
            {
                "driverId": driver_id,
                "sessionId": session_id,
                "seq": first_seq + seq,
                "samples": rows_of(shifted, start, start + 60),
            }
        )
        for seq, start in enumerate(range(0, length, 60))
    ]


async def steady_state_size(
    workdir: Path, columns: Columns, clients: int, segments: int
) -> tuple[Stored, Stored, float, float]:
    """Bytes per sample of 60-sample batches that compaction merges: in the steady state, and all counted after
    the last merge; with the seconds of ingest and the seconds compaction needed after it to catch up.

    Right after a merge the space of the small rows it deleted still counts in the table's size: (auto)vacuum
    makes it reusable, it does not give it back. A server that keeps ingesting reuses it, so the honest
    figure is how fast the tables grow while ingest, compaction and vacuum run side by side: here `clients`
    relays each stream `segments` repetitions of `columns` into one live session, compaction merges chunks
    one second after they arrive (the bench drives ~100x faster than a car), a VACUUM runs every two seconds
    (autovacuum's job, see migration 0004), and the steady-state figure is the growth over the second half of
    the stream (the growth of one segment alone swings by ±8 B as freed TOAST pages get reused in lumps). Each size is taken once compaction caught up with the segment (it re-encodes every sample, so
    on this saturated 2-core machine it trails the ingest: that time is reported) and a VACUUM ran. The
    second figure is everything stored over every sample, the sessions ended and all merged and vacuumed.
    """
    async with local_server(
        workdir, LIVE_COACHING="false", COMPACTION_SETTLE_S="1", COMPACTION_INTERVAL_S="0.5"
    ) as server:
        bench = Bench(server.database_url, server.base, server.settings, server.process.pid, workdir / "pg")
        made = await drivers_with_sessions(server.settings, clients)
        done = asyncio.Event()
        conn = await asyncpg.connect(bench.database_url)

        async def vacuum() -> None:
            vacuum_conn = await asyncpg.connect(bench.database_url)
            try:
                while not done.is_set():
                    await vacuum_conn.execute("VACUUM telemetry_data")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), 2.0)
            finally:
                await vacuum_conn.close()

        async def caught_up() -> float:
            started = time.perf_counter()
            # Each live session keeps at most its open run of 10 small chunks (the next batch may join it).
            unmerged = "SELECT count(*) FROM telemetry_data WHERE part_sizes IS NULL"
            while True:
                if await conn.fetchval(unmerged) <= 10 * clients:
                    return time.perf_counter() - started
                await asyncio.sleep(0.2)  # polling the database: there is nothing in-process to wait on

        vacuuming = asyncio.create_task(vacuum())
        marks, ingest_s, catch_up_s = [], 0.0, 0.0
        try:
            for segment in range(segments):
                per_client = [(key, segment_bodies(columns, segment, d, s)) for d, s, key in made]
                ingest_s += await http_ingest(bench.base_url, per_client)
                catch_up_s += await caught_up()
                marks.append(await stored_size(bench.database_url))
        finally:
            done.set()
            await vacuuming
            await conn.close()
        await end_and_compact(bench, made)
        merged = await stored_size(bench.database_url)
    return marks[-1] - marks[segments // 2 - 1], merged, ingest_s, catch_up_s


async def run(samples: int, clients: int, repeats: int) -> None:
    columns = telemetry_stream(samples)
    print(
        f"{samples:,} samples x {len(columns)} channels per client, {clients} concurrent clients, best of {repeats}"
    )
    with tempfile.TemporaryDirectory(prefix="pitbox-bench-") as tmp:
        async with bench_server(Path(tmp)) as bench:
            table = []
            stored: dict[int, Stored] = {}  # batch size -> what its runs added
            cpu_per_batch: dict[int, CpuPerBatch] = {}  # batch size -> CPU of the fastest run
            for batch in (600, 60):
                before = await stored_size(bench.database_url)
                http_best = decode_best = copy_best = float("inf")
                wide_bps = 0.0
                cpu_ms = CpuPerBatch()
                for _ in range(repeats):
                    made = await drivers_with_sessions(bench.settings, clients)
                    per_client = [(key, bodies_for(columns, batch, d, s)) for d, s, key in made]
                    run_cpu = RunCpu(bench.pid, bench.database_dir)
                    http_s = await http_ingest(bench.base_url, per_client)
                    if http_s < http_best:
                        http_best = http_s
                        batches = sum(len(bodies) for _, bodies in per_client)
                        cpu_ms = run_cpu.ms_per(batches)
                    decode_best = min(decode_best, sum(decode_only(bodies) for _, bodies in per_client))
                    copy_s, wide_bps = await copy_rows(bench.database_url, columns, batch, clients)
                    copy_best = min(copy_best, copy_s)
                total = samples * clients
                table.append((batch, total / http_best, total / decode_best, total / copy_best, wide_bps))
                cpu_per_batch[batch] = cpu_ms
                after = await stored_size(bench.database_url)
                stored[batch] = after - before
            everything = await stored_size(bench.database_url)
        (Path(tmp) / "steady").mkdir()
        steady, merged, ingest_s, catch_up_s = await steady_state_size(
            Path(tmp) / "steady", columns, clients, segments=8
        )
    print(
        f"\n{'batch':>6} {'HTTP samples/s':>15} {'orjson decode/s':>16} {'COPY wide rows/s':>17} "
        f"{'HTTP/decode':>12} {'HTTP/COPY':>10}"
    )
    for batch, http_rate, decode_rate, copy_rate, _ in table:
        print(
            f"{batch:>6} {http_rate:>15,.0f} {decode_rate:>16,.0f} {copy_rate:>17,.0f} "
            f"{http_rate / decode_rate:>12.2f} {http_rate / copy_rate:>10.2f}"
        )
    cores = os.cpu_count() or 1
    print(f"\nCPU per batch in the fastest run ({cores} cores):")
    for batch, cpu in cpu_per_batch.items():
        decode_ms = 1000 * batch / next(rate for size, _, rate, _, _ in table if size == batch)
        # At HTTP/decode 0.5 a batch takes twice orjson's decode in wall time, with every core busy.
        print(
            f"  {batch}-sample batches: {cpu}; at HTTP/decode 0.5 the {cores} cores together could spend "
            f"{2 * cores} x {decode_ms:.2f} ms (orjson) = {2 * cores * decode_ms:.2f} ms"
        )
    per_batch = ", ".join(f"{batch}-sample batches {added.per_sample()}" for batch, added in stored.items())
    print(
        f"\nbytes on disk per sample (telemetry_data and telemetry_batches with TOAST and indexes), as ingested: "
        f"{per_batch}; all batches {everything.size / everything.samples:.1f} B; "
        f"wide rows (COPY table) {table[0][4]:.1f} B"
    )
    print(
        f"60-sample batches merged by compaction, ingest, compaction and vacuum running together: "
        f"steady state {steady.per_sample()}; all counted after the last merge {merged.per_sample()}; "
        f"compaction caught up {catch_up_s:.1f} s after {ingest_s:.1f} s of ingest"
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
