"""The fault tests' world: real `pitbox serve` processes, a PostgreSQL we may stop and start, our own Redis and
NATS servers we may kill, and a steady ingest that remembers every batch the server acknowledged."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from pitbox.telemetry.codec import ChunkCodec
from tests.conftest import TEST_JWT_SECRET, free_port, missing

#: The longest any single request may take before we call it a hang.
REQUEST_TIMEOUT_S = 15.0
#: The longest a fault test waits for any one condition (recovery, a delivery, a restart).
CONDITION_DEADLINE_S = 45.0


async def eventually(
    condition: Callable[[], bool], what: str, deadline_s: float = CONDITION_DEADLINE_S
) -> None:
    """Poll `condition` until it holds; fail the test with `what` when the deadline passes."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    while not condition():
        if loop.time() > until:
            raise AssertionError(f"gave up waiting ({deadline_s:.0f} s) for: {what}")
        await asyncio.sleep(0.02)


# -- pitbox serve --------------------------------------------------------------------------------------------


class ServeProcess:
    """A real `python -m pitbox serve` on a fixed loopback port; it can be killed and started again."""

    def __init__(self, database_url: str, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "NATS_URL", "AI_AGENT_URL")},
            "DATABASE_URL": database_url,
            "JWT_SECRET": TEST_JWT_SECRET,
            "DATA_DIR": str(data_dir),
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "warning",
            **env,
        }
        self.log_path = data_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def pid(self) -> int:
        """The process id of the running server."""
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        """Start the server and wait until it answers /health with 200. At its first start it moves to another
        free port when another process on this busy machine took the one picked meanwhile."""
        first = self.proc is None
        self._spawn()
        try:
            await self.wait_healthy()
        except AssertionError:
            if not (first and "address already in use" in self.log_tail().lower()):
                raise
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.env["PORT"] = str(self.port)
            self._spawn()
            await self.wait_healthy()

    def _spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pitbox", "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    async def wait_healthy(self) -> None:
        """Wait until /health answers 200 (the database answers too)."""
        async with httpx.AsyncClient(timeout=2) as http:

            async def healthy() -> bool:
                assert self.proc is not None
                assert self.proc.poll() is None, f"pitbox serve exited; see {self.log_path}"
                try:
                    return (await http.get(f"{self.url}/health")).status_code == 200
                except httpx.TransportError:
                    return False

            loop = asyncio.get_running_loop()
            until = loop.time() + CONDITION_DEADLINE_S
            while not await healthy():
                if loop.time() > until:
                    raise AssertionError(f"{self.url} never became healthy; see {self.log_path}")
                await asyncio.sleep(0.1)

    def running(self) -> bool:
        """True while the process lives."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, in-flight requests cut."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL if it does not go within 30 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_tail(self) -> str:
        """The end of the server's output (for failure messages)."""
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


# -- PostgreSQL we control -------------------------------------------------------------------------------------


class ControlledPostgres:
    """A pgserver cluster in a temp dir that the test stops (`pg_ctl stop -m immediate`: a crash) and restarts."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._socket_dir: Path | None = None
        self._user: str | None = None
        self.uri = ""

    def start_first(self) -> str:
        """initdb and start through pgserver (which knows how to run as root); returns the server URL."""
        import pgserver

        server = pgserver.get_server(self.pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
        info = server.get_postmaster_info()
        self._socket_dir = info.socket_dir
        self._user = server.system_user
        self.uri = str(server.get_uri())
        return self.uri

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args]
        with open(os.devnull, "wb") as devnull:
            subprocess.run(command, check=True, user=self._user, timeout=60, stdout=devnull, stderr=devnull)

    def stop(self, mode: str = "immediate") -> None:
        """Stop PostgreSQL underneath its clients (`immediate` skips the checkpoint, like a crash)."""
        self._pg_ctl("-m", mode, "-w", "stop")

    def start(self) -> None:
        """Start it again on the same socket (crash recovery runs first after an immediate stop)."""
        assert self._socket_dir is not None
        self._pg_ctl(
            "-w", "-o", '-h ""', "-o", f"-k {self._socket_dir}", "-l", str(self.pgdata / "log"), "start"
        )

    def close(self) -> None:
        """Stop it for good if it runs."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._pg_ctl("-m", "fast", "-w", "stop")


@pytest.fixture
def controlled_postgres(pg_dir: Path) -> Iterator[ControlledPostgres]:
    """A PostgreSQL of this test alone."""
    database = ControlledPostgres(pg_dir)
    database.start_first()
    yield database
    database.close()


# -- brokers we control --------------------------------------------------------------------------------------


def find_binary(name: str) -> str | None:
    """The path of a server binary on PATH or in /usr/sbin, /usr/bin."""
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )


class BrokerProcess:
    """Our own redis-server or nats-server on a free port, killed and restarted by the test."""

    def __init__(self, kind: str) -> None:
        binary = find_binary("redis-server" if kind == "redis" else "nats-server")
        if binary is None:
            missing(
                f"the {kind} server binary is not on PATH, /usr/sbin or /usr/bin (apt-get install {kind}-server)"
            )
        self.kind = kind
        self.port = free_port()
        if kind == "redis":
            self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--daemonize", "no"]  # fmt: skip
            self.url = f"redis://127.0.0.1:{self.port}/0"
            self.setting = {"REDIS_URL": self.url}
        else:
            self.command = [binary, "-a", "127.0.0.1", "-p", str(self.port)]
            self.url = f"nats://127.0.0.1:{self.port}"
            self.setting = {"NATS_URL": self.url}
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Start the broker and wait until its port accepts connections."""
        self._spawn()

        async def accepts() -> bool:
            assert self.proc is not None
            assert self.proc.poll() is None, f"{self.kind} server exited"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.close()
            return True

        loop = asyncio.get_running_loop()
        until = loop.time() + CONDITION_DEADLINE_S
        while not await accepts():
            if loop.time() > until:
                raise AssertionError(f"{self.kind} server never listened on {self.port}")
            await asyncio.sleep(0.05)

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        """SIGKILL the broker: every connection to it drops at once."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


# -- a steady ingest that remembers its acks -----------------------------------------------------------------


def batch_samples(index: int, size: int = 60) -> list[dict[str, float]]:
    """Batch `index` of a car at 60 Hz: one second of samples starting at t = index."""
    return [
        {"t": index + i / 60, "speed": 100.0 + (index % 50), "lapDistPct": ((index * 60 + i) % 3600) / 3600}
        for i in range(size)
    ]


@dataclass
class SteadyIngest:
    """One driver sending numbered batches (`batchId` b-N) one after another, each retried until acknowledged.

    Every answer is counted by status (`transport` for a refused or cut connection); `acked` maps the batch key
    of each ack (as stored) to the sample count in it; `final` holds each batch's last answer (status, and
    whether it said `duplicate`) and `cut` the batches sent again after a cut connection.
    """

    base_url: str
    token: str
    driver_id: str
    session_id: str
    pause_s: float = 0.02
    acked: dict[str, int] = field(default_factory=dict)
    acked_indices: set[int] = field(default_factory=set)
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    unexpected: list[str] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    final: dict[str, tuple[int, bool]] = field(default_factory=dict)
    cut: set[str] = field(default_factory=set)
    next_index: int = 0

    def body(self, index: int) -> bytes:
        """The JSON body of batch `index`."""
        return orjson.dumps(
            {
                "driverId": self.driver_id,
                "sessionId": self.session_id,
                "batchId": f"b-{index}",
                "samples": batch_samples(index),
            }
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Send batches until `stop` is set (the batch in hand is still taken to its ack)."""
        headers = {"Authorization": f"Bearer {self.token}", "content-type": "application/json"}
        async with httpx.AsyncClient(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S) as http:
            while not stop.is_set():
                await self._send_until_acked(http, headers, self.next_index)
                self.next_index += 1
                await asyncio.sleep(self.pause_s)

    async def _send_until_acked(self, http: httpx.AsyncClient, headers: dict[str, str], index: int) -> None:
        key = f"b-{index}"
        body = self.body(index)
        self.sent_at[key] = time.monotonic()
        deadline = time.monotonic() + 2 * CONDITION_DEADLINE_S
        while time.monotonic() < deadline:
            try:
                response = await http.post("/api/telemetry", content=body, headers=headers)
            except httpx.TimeoutException:
                self.answers["timeout"] += 1
                self.unexpected.append(f"{key}: no answer within {REQUEST_TIMEOUT_S} s")
                continue
            except httpx.TransportError:
                self.answers["transport"] += 1
                self.cut.add(key)
                await asyncio.sleep(0.05)
                continue
            self.answers[str(response.status_code)] += 1
            if response.status_code in (200, 201):
                ack = response.json()
                self.acked[str(ack["batchKey"])] = int(ack["samples"])
                self.acked_indices.add(index)
                self.final[key] = (response.status_code, bool(ack["duplicate"]))
                return
            if response.status_code not in (429, 503):
                self.unexpected.append(f"{key}: {response.status_code} {response.text[:300]}")
            elif response.status_code == 503:
                assert response.json()["error"]["code"] == "unavailable", response.text
            await asyncio.sleep(0.05)
        raise AssertionError(f"batch {key} was never acknowledged")

    def acked_after(self, index: int) -> int:
        """How many batches numbered above `index` were acknowledged."""
        return sum(1 for acked in self.acked_indices if acked > index)


def acked_since(ingests: list[SteadyIngest], marks: list[int], count: int) -> Callable[[], bool]:
    """A condition: every ingest had `count` batches acknowledged beyond its mark (its `next_index` then)."""
    return lambda: all(i.acked_after(m) >= count for i, m in zip(ingests, marks, strict=True))


def marks_of(ingests: list[SteadyIngest]) -> list[int]:
    """Each ingest's next batch number, to count acknowledgements from now on."""
    return [i.next_index for i in ingests]


def sample_times(indices: set[int]) -> list[float]:
    """The `t` of every sample of these batches, in order (what the database must hold, each once)."""
    return sorted(sample["t"] for index in indices for sample in batch_samples(index))


@dataclass
class StoredSession:
    """What the database holds for one session: its batches by key (with the chunk number each got), the
    samples its chunks hold (merged or not: their `t`, decoded, in order), and its running statistics."""

    chunks: dict[str, int]
    chunk_numbers: list[int]
    session_sample_count: int
    sample_times: list[float]
    stored_samples: int


async def stored_session(database_url: str, session_id: str) -> StoredSession:
    """Read a session's chunks and statistics straight from the database."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT b.batch_key, b.chunk_no, b.sample_count FROM telemetry_batches b
               WHERE b.session_id = $1 ORDER BY b.chunk_no""",
            uuid.UUID(session_id),
        )
        stored_samples = await conn.fetchval(
            "SELECT coalesce(sum(sample_count), 0) FROM telemetry_data WHERE session_id = $1",
            uuid.UUID(session_id),
        )
        total = await conn.fetchval("SELECT sample_count FROM sessions WHERE id = $1", uuid.UUID(session_id))
        payloads = await conn.fetch(
            "SELECT payload, channels FROM telemetry_data WHERE session_id = $1", uuid.UUID(session_id)
        )
    finally:
        await conn.close()
    codec = ChunkCodec()
    times = [t for row in payloads for t in codec.decode(row["payload"], row["channels"])["t"].tolist()]
    return StoredSession(
        chunks={row["batch_key"]: int(row["sample_count"]) for row in rows},
        chunk_numbers=[int(row["chunk_no"]) for row in rows],
        session_sample_count=int(total),
        sample_times=sorted(times),
        stored_samples=int(stored_samples),
    )


async def stored_batch_keys(database_url: str, batches: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (session id, batch key) pairs the database holds (committed)."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT session_id::text, batch_key FROM telemetry_batches
               WHERE (session_id::text, batch_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))""",
            [session for session, _ in batches],
            [key for _, key in batches],
        )
    finally:
        await conn.close()
    return {(row["session_id"], row["batch_key"]) for row in rows}


async def assert_acked_is_stored(
    database_url: str, ingests: list[SteadyIngest], fault: str, answers: set[str]
) -> None:
    """Every acknowledged batch is stored once, whole, and nothing else; only `answers` were seen."""
    for ingest in ingests:
        stored = await stored_session(database_url, ingest.session_id)
        print(
            f"\nFAULT {fault}: batches acked={len(ingest.acked)} found={len(stored.chunks)}; "
            f"samples acked={sum(ingest.acked.values())} found={sum(stored.chunks.values())} "
            f"session stat={stored.session_sample_count}; answers={dict(ingest.answers)}"
        )
        assert ingest.unexpected == [], ingest.unexpected
        assert set(ingest.answers) <= answers, ingest.answers
        assert stored.chunks == ingest.acked
        # Every sample of every acknowledged batch is held once and nothing else is (the samples themselves,
        # decoded: a batch stored twice under two keys, or a merge that lost or doubled rows, shows here).
        assert stored.sample_times == sample_times(ingest.acked_indices), "samples lost, doubled or foreign"
        assert stored.chunk_numbers == list(range(len(stored.chunks))), "a gap or a half-written chunk"
        assert stored.session_sample_count == sum(stored.chunks.values()), "chunks and session stats disagree"
        assert stored.stored_samples == sum(stored.chunks.values()), "chunk rows and batch keys disagree"


async def create_session(base_url: str, token: str, driver_id: str) -> str:
    """A new session for the driver, created over HTTP; its id."""
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as http:
        response = await http.post(
            "/api/sessions",
            json={"driverId": driver_id, "name": f"fault {uuid.uuid4().hex[:6]}"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def run_until(stop: asyncio.Event, tasks: list[asyncio.Task[None]], scenario: Awaitable[None]) -> None:
    """Run the fault scenario while the ingest tasks run; then stop them and surface their failures."""
    try:
        await scenario
    finally:
        stop.set()
        done, pending = await asyncio.wait(tasks, timeout=2 * CONDITION_DEADLINE_S)
        for task in pending:
            task.cancel()
    for task in done:
        task.result()
    assert not pending, "an ingest task did not stop"
