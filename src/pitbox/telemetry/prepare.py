"""Turning an ingest body into a batch ready to store: decode, check, encode, in worker processes.

The rule: work that holds the GIL per batch (parsing JSON into floats, numpy checks, encoding) runs outside the
server process, so the event loop stays free for HTTP and WebSocket fan-out. `IngestWorkers` hands the raw body
to worker processes and gets back the checked columns and the encoded chunk; the server process keeps the
database transaction, lap detection and publishing. With `processes=0` the same work runs inline.

Each worker is a child process spoken to over its stdin and stdout from the event loop itself: a body goes
out length-prefixed, its answer (a pickled `PreparedBatch` or the domain error) comes back in order, with no
executor threads between. A worker that dies (killed, out of memory) loses nothing: the batches in flight to
it are prepared in the server process and a new worker is started. Why this shape, in numbers:
docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import signal
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any

import structlog

from pitbox.errors import PitboxError, Unavailable
from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.ingest import parse_batch, parse_body
from pitbox.telemetry.models import IngestBatch
from pitbox.telemetry.uniform_rows import UniformRows

log = structlog.get_logger(__name__)

_LENGTH = 8  # bytes of the little-endian length before each message on a worker's pipes
PIPE_BYTES = 1024 * 1024
#: A batch waits this long for its worker before the worker is taken for stuck (killed; the batch gets 503).
ANSWER_TIMEOUT_S = 30.0
#: Batches in flight per worker beyond which a new one is prepared in the server process.
MAX_PENDING = 32
#: Worker deaths within CRASH_WINDOW_S seconds after which batches are prepared in the server process for
#: CRASH_WINDOW_S seconds (instead of each batch starting a new process that dies too).
CRASH_LIMIT = 3
CRASH_WINDOW_S = 60.0
#: Read-buffer limit of a worker's answers: above any answer, so the pipe is never paused halfway through one.
ANSWER_BUFFER_BYTES = 64 * 1024 * 1024
_WORKER_ENTRY = "from pitbox.telemetry.prepare import serve_worker; serve_worker()"


@dataclass(frozen=True)
class PreparedBatch:
    """A checked batch with its encoded chunk; None when some sample's clock comes from the session (its `t`
    is only known once the session row is locked: the server encodes that batch itself)."""

    batch: IngestBatch
    payload: bytes | None
    names: list[str]  # the channels in payload order (what `ChunkCodec.decode` needs back)


def prepare_message(message: Any, codec: ChunkCodec) -> PreparedBatch:
    """Check a decoded ingest message and encode its chunk (422 naming the field when it is wrong)."""
    return _encoded(parse_batch(message), codec)


def prepare_body(body: bytes, codec: ChunkCodec, uniform_rows: UniformRows) -> PreparedBatch:
    """Check a raw JSON body and encode its chunk (400/413/422 for an unreadable, too large or wrong one)."""
    return _encoded(parse_body(body, uniform_rows), codec)


def _encoded(batch: IngestBatch, codec: ChunkCodec) -> PreparedBatch:
    if batch.pending is not None:
        return PreparedBatch(batch, None, [])
    payload, names = codec.encode(batch.columns)
    return PreparedBatch(batch, payload, names)


class WorkerDied(Exception):
    """The worker process ended with this batch in flight."""


class _Worker:
    """One worker process and the futures of the batches sent to it, answered in the order sent."""

    def __init__(
        self, process: asyncio.subprocess.Process, bodies: asyncio.StreamWriter, answers: asyncio.StreamReader
    ) -> None:
        self.process = process
        self._bodies = bodies
        self._answers = answers
        self.pending: deque[asyncio.Future[PreparedBatch]] = deque()
        self.alive = True
        self._reader = asyncio.create_task(self._read_answers())

    async def prepare(self, body: bytes) -> PreparedBatch:
        future: asyncio.Future[PreparedBatch] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        try:
            try:
                # Both writes happen before any await: a message is never split by another one.
                self._bodies.write(len(body).to_bytes(_LENGTH, "little"))
                self._bodies.write(body)
                await self._bodies.drain()
            except (ConnectionError, RuntimeError) as error:
                self._died(error)
            try:
                return await asyncio.wait_for(future, ANSWER_TIMEOUT_S)
            except TimeoutError:
                # Alive but stuck (a pathological body, a stopped process): its batches cannot be trusted to it.
                log.error("ingest_worker_hung", pid=self.process.pid, seconds=ANSWER_TIMEOUT_S)
                self._died(TimeoutError())
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                raise Unavailable("the batch could not be prepared in time; send it again") from None
        finally:
            if not future.done():  # this request was cancelled: its answer, when it comes, is skipped
                future.cancel()

    async def _read_answers(self) -> None:
        answers = self._answers
        try:
            while True:
                size = int.from_bytes(await answers.readexactly(_LENGTH), "little")
                ok, value = pickle.loads(await answers.readexactly(size))  # noqa: S301 - our own child
                future = self.pending.popleft()
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except Exception as error:
            self._died(error)

    def _died(self, error: BaseException) -> None:
        """No more batches for this worker; those it holds are prepared elsewhere (`WorkerDied`)."""
        if self.alive:
            self.alive = False
            log.error("ingest_worker_died", pid=self.process.pid, error=repr(error))
        self._bodies.close()
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(WorkerDied())

    async def stop(self) -> None:
        """End the worker after what it holds; whatever it leaves unanswered is prepared elsewhere."""
        self.alive = False  # an orderly end: nothing to log
        self._bodies.close()  # the worker ends at the end of its input
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        # Its answers end with it: the reader takes what is left in the pipe, then meets the end of it.
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._reader, 5)
        self._died(EOFError())


class IngestWorkers:
    """Prepares ingest bodies in `processes` worker processes (0: in this process).

    Batches go to the worker with the fewest in flight; when every worker holds MAX_PENDING, the batch is
    prepared in the server process instead (which slows the event loop, and so the clients, down). Workers that
    keep dying (CRASH_LIMIT within CRASH_WINDOW_S) are given up on for CRASH_WINDOW_S: batches are prepared in
    the server process meanwhile instead of each paying for a new process.
    """

    def __init__(self, codec: ChunkCodec, processes: int) -> None:
        self._codec = codec
        self._uniform_rows = UniformRows()
        self.processes = processes
        self._workers: list[_Worker] = []
        self._starting: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._deaths: deque[float] = deque()
        self._inline_until = 0.0
        self._closed = False

    def start(self) -> None:
        """Start the worker processes now (their imports take a moment) rather than on the first batch."""
        if self.processes > 0 and self._starting is None:
            self._starting = asyncio.create_task(self._fill())

    async def prepare(self, body: bytes) -> PreparedBatch:
        """Decode, check and encode one body; errors are the same domain errors as inline."""
        if self.processes <= 0 or self._closed:
            return self._inline(body)
        now = asyncio.get_running_loop().time()
        self._reap(now)
        if now < self._inline_until:
            return self._inline(body)
        if len(self._workers) < self.processes:
            if self._starting is None or self._starting.done():
                self._starting = asyncio.create_task(self._fill())
            await asyncio.shield(self._starting)
        alive = [w for w in self._workers if w.alive]
        if not alive:
            return self._inline(body)
        worker = min(alive, key=lambda w: len(w.pending))
        if len(worker.pending) >= MAX_PENDING:
            return self._inline(body)
        try:
            return await worker.prepare(body)
        except WorkerDied:
            return self._inline(body)

    def _inline(self, body: bytes) -> PreparedBatch:
        return prepare_body(body, self._codec, self._uniform_rows)

    def pids(self) -> list[int]:
        """Process ids of the running workers (for the worker-crash test)."""
        return sorted(w.process.pid for w in self._workers if w.alive)

    async def close(self) -> None:
        """Stop the worker processes (after the server stopped taking requests)."""
        self._closed = True
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
        await asyncio.gather(*(worker.stop() for worker in self._workers), *self._stopping)
        self._workers.clear()

    def _reap(self, now: float) -> None:
        """Forget dead workers (their processes are waited for in the background) and count the deaths."""
        dead = [w for w in self._workers if not w.alive]
        if not dead:
            return
        self._workers[:] = [w for w in self._workers if w.alive]  # in place: `_fill` may be appending to it
        for worker in dead:
            task = asyncio.create_task(worker.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
            self._deaths.append(now)
        while self._deaths and self._deaths[0] < now - CRASH_WINDOW_S:
            self._deaths.popleft()
        if len(self._deaths) >= CRASH_LIMIT:
            log.error("ingest_workers_keep_dying", deaths=len(self._deaths), inline_for_s=CRASH_WINDOW_S)
            self._deaths.clear()
            self._inline_until = now + CRASH_WINDOW_S

    async def _fill(self) -> None:
        settings = {
            key: sorted(value) if isinstance(value, frozenset) else value
            for key, value in self._codec.settings.items()
        }
        while not self._closed and len(self._workers) < self.processes:
            try:
                worker = await _start_worker(settings)
            except OSError as error:
                log.error("ingest_worker_not_started", error=str(error), inline_for_s=CRASH_WINDOW_S)
                self._inline_until = asyncio.get_running_loop().time() + CRASH_WINDOW_S
                return
            if self._closed:
                await worker.stop()
                return
            self._workers.append(worker)


async def _start_worker(settings: dict[str, Any]) -> _Worker:
    """A worker process on two pipes of 1 MiB (so a batch or an answer passes in one write, where the
    default 64 KiB pipe, or the socket pair uvloop makes, take many with a wait between)."""
    loop = asyncio.get_running_loop()
    bodies_in, bodies_out = os.pipe()
    answers_in, answers_out = os.pipe()
    try:
        for fd in (bodies_out, answers_out):
            _widen(fd)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WORKER_ENTRY, json.dumps(settings), stdin=bodies_in, stdout=answers_out
        )
    except OSError:
        for fd in (bodies_in, bodies_out, answers_in, answers_out):
            os.close(fd)
        raise
    os.close(bodies_in)
    os.close(answers_out)
    answers = asyncio.StreamReader(limit=ANSWER_BUFFER_BYTES)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(answers), os.fdopen(answers_in, "rb", 0)
    )
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), os.fdopen(bodies_out, "wb", 0)
    )
    bodies = asyncio.StreamWriter(transport, protocol, None, loop)
    return _Worker(process, bodies, answers)


def _widen(fd: int) -> None:
    """A pipe of PIPE_BYTES instead of 64 KiB (Linux; elsewhere the default stays)."""
    import fcntl  # POSIX only: here, so the module imports where there is none (INGEST_PROCESSES=0)

    set_pipe_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_pipe_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, set_pipe_size, PIPE_BYTES)


def serve_worker() -> None:
    """A worker process: read length-prefixed bodies on stdin, answer each on stdout until stdin ends."""
    # Ctrl-C reaches the whole process group: the server stops its workers itself, after the last request.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    codec = ChunkCodec(**json.loads(sys.argv[1]))
    uniform_rows = UniformRows()
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot corrupt the answers
    bodies = sys.stdin.buffer
    while True:
        head = bodies.read(_LENGTH)
        if len(head) < _LENGTH:
            return
        body = bodies.read(int.from_bytes(head, "little"))
        result: tuple[bool, Any]
        try:
            result = (True, prepare_body(body, codec, uniform_rows))
        except PitboxError as error:
            result = (False, error)
        except Exception as error:
            result = (False, RuntimeError(f"ingest worker: {error!r}"))
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        answers.write(len(data).to_bytes(_LENGTH, "little"))
        answers.write(data)
        answers.flush()
