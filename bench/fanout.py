"""Fan-out benchmark: one driver publishing at 60 Hz to N WebSocket subscribers, hub vs a bare broadcast.

Run: `python bench/fanout.py --quick` (100 and 1,000 subscribers, 3 s each) or without --quick (100, 1,000 at
60 Hz and 5,000 dashboards at a coalesced 20 Hz, 10 s each). Each case runs two servers in turn, each in its own
process: the PitBox app (real auth, the hub, uvicorn + websockets-sansio, uvloop) and a bare `websockets` server
that broadcasts the same bytes with `websockets.broadcast` — the limit for Python on this machine. Subscribers
run in separate processes with a minimal reader (100 readers per process parse and time every frame; the others
count message frames with a byte scan) so the clients, which share the server's 2 cores, cost it little.
Prints one table with delivered messages/s, publish-to-receipt latency p50/p99, server CPU (share of one core),
and hub/bare ratio.
The hub's database is DATABASE_URL when set, else an embedded PostgreSQL in a temp directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SRC = HERE.parents[1] / "src"
RATE_HZ = 60.0
LATENCY_READERS = 100  # per subscriber process, readers that time each message (the others only count)


def sample_data(seq: int) -> dict[str, Any]:
    """One telemetry message of about 1.5 KB, stamped with the publish time."""
    return {
        "t": time.time(),
        "n": seq,
        "speed": 201.5,
        "rpm": 11250,
        "gear": 5,
        "channels": [round(0.001 * i * (seq % 97), 4) for i in range(140)],
    }


# ---------------------------------------------------------------- servers (run in child processes)


async def _publish_for(seconds: float, publish: Any, rate: float) -> int:
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while loop.time() - start < seconds:
        publish(sample_data(n))
        n += 1
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
    return n


async def _control_loop(publish: Any) -> None:
    """Read `run <seconds> <rate>` lines on stdin; answer `done <json>` with the publishing window's CPU use."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line or line.startswith("quit"):
            return
        _, seconds, rate = line.split()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        published = await _publish_for(float(seconds), publish, float(rate))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        print("done " + json.dumps({"published": published, "cpu": cpu / wall}), flush=True)


def serve_hub(port: int) -> None:
    """The PitBox app with an admin and a driver; publishes on the driver's telemetry channel when told."""
    import uuid

    import uvicorn

    from pitbox.app import create_app
    from pitbox.config import Settings
    from pitbox.serving import HubFirstServer

    tmp = Path(tempfile.mkdtemp(prefix="pitbox-bench-"))
    settings = Settings(
        _env_file=None,
        database_url=os.environ.get("DATABASE_URL") or None,
        data_dir=tmp,
        jwt_secret="bench-secret-0123456789abcdefghijklmnop",
        host="127.0.0.1",
        port=port,
        log_level="warning",
        db_pool_max=20,
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        log_config=None,
        access_log=False,
        lifespan="on",
        backlog=8192,
    )
    server = HubFirstServer(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn has no 'started' event to await
            await asyncio.sleep(0.05)
        services = app.state.services
        if hasattr(services.hub.limits, "sockets_per_caller"):
            # Every bench subscriber shares one token; real dashboards are many users, each under the limit.
            services.hub.limits = dataclasses.replace(services.hub.limits, sockets_per_caller=1_000_000)
        tag = uuid.uuid4().hex[:8]
        admin = await services.users.create_user(f"bench-admin-{tag}@pitbox.test", "admin")
        driver = await services.users.create_user(f"bench-driver-{tag}@pitbox.test", "driver")
        token, _ = services.logins.issue_token(uuid.UUID(admin["id"]))
        channel = f"telemetry:{driver['driverId']}"
        print("ready " + json.dumps({"token": token, "channel": channel}), flush=True)
        await _control_loop(lambda data: services.hub.publish(channel, data))
        server.should_exit = True
        await task

    import uvloop

    uvloop.run(main())


def serve_bare(port: int) -> None:
    """A bare `websockets` server broadcasting the same frame bytes (encoded once per message)."""
    import orjson
    import uvloop
    from websockets.asyncio.server import broadcast, serve

    from pitbox.realtime.frames import message_frame

    clients: set[Any] = set()
    channel = "telemetry:00000000-0000-0000-0000-000000000000"

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def main() -> None:
        seq = 0

        def publish(data: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            broadcast(clients, message_frame(channel, seq, orjson.dumps(data)).text)

        async with serve(handler, "127.0.0.1", port, compression=None, backlog=8192, max_queue=None):
            print("ready " + json.dumps({"token": "", "channel": channel}), flush=True)
            await _control_loop(publish)

    uvloop.run(main())


# ---------------------------------------------------------------- subscribers (a child process)


class _Reader(asyncio.Protocol):
    """A minimal WebSocket client: handshake, one masked subscribe frame, then counting server text frames."""

    def __init__(
        self,
        host: str,
        path: str,
        subscribe: bytes | None,
        on_ready: asyncio.Future[None],
        timed: bool = True,
    ) -> None:
        self.host, self.path, self.subscribe, self.on_ready = host, path, subscribe, on_ready
        # Whether this reader records publish-to-receipt latencies (a sample of the readers does).
        self.timed = timed
        self.buffer = bytearray()
        self.open = False
        self.counting = False
        self.count = 0
        self.latencies: list[float] = []
        self.closed_code: int | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        transport.write(request.encode())  # type: ignore[attr-defined]

    def _send_text(self, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        assert self.transport is not None
        self.transport.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buffer[:end]:
                raise RuntimeError(self.buffer[:end].decode())
            del self.buffer[: end + 4]
            self.open = True
            if self.subscribe is None:
                self.on_ready.set_result(None)
            else:
                self._send_text(self.subscribe)
        if not self.timed and self.on_ready.done():
            # Counting readers only count: the server's frames are JSON text (no byte of it starts a frame
            # header's opcode), so a scan for the message prefix counts them; an error frame (the slow-consumer
            # notice before its close) marks the reader cut. Real dashboards run on other machines; here they
            # share the server's 2 cores, so the less each costs, the more the numbers are the server's.
            if self.counting:
                self.count += data.count(b'{"type":"message"')
            if b'{"type":"error"' in data:
                self.closed_code = 4008
            self.buffer.clear()
            return
        self._frames()

    def _frames(self) -> None:
        buf = self.buffer
        pos = 0
        size = len(buf)
        now = time.time()
        while size - pos >= 2:
            opcode = buf[pos] & 0x0F
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if size - pos < head + length:
                break
            start, pos = pos + head, pos + head + length
            if opcode == 0x8:
                self.closed_code = int.from_bytes(buf[start : start + 2], "big") if length >= 2 else 1005
                continue
            if opcode != 0x1:
                continue
            if buf.startswith(b'{"type":"message"', start):
                if self.counting:
                    self.count += 1
                    at = buf.find(b'"t":', start, pos) if self.timed else -1
                    if at >= 0:
                        self.latencies.append(now - float(buf[at + 4 : buf.find(b",", at, pos)]))
            elif not self.on_ready.done() and buf.startswith(b'{"type":"subscribed"', start):
                self.on_ready.set_result(None)
        del buf[:pos]


async def _subscribers(
    url: str, n: int, token: str, channel: str, max_rate: float | None, seconds: float
) -> None:
    loop = asyncio.get_running_loop()
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    path = f"/ws?token={token}" if token else "/"
    sub: dict[str, Any] = {"type": "subscribe", "channel": channel}
    if max_rate:
        sub["maxRate"] = max_rate
    subscribe = json.dumps(sub, separators=(",", ":")).encode() if token else None
    if subscribe is not None and len(subscribe) >= 126:
        raise SystemExit("subscribe frame too long for the minimal client")
    readers: list[_Reader] = []
    gate = asyncio.Semaphore(100)
    every = max(1, n // LATENCY_READERS)

    async def one(i: int) -> None:
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            _, reader = await loop.create_connection(
                lambda: _Reader(host_port, path, subscribe, ready, timed=i % every == 0), host, int(port)
            )
            readers.append(reader)
            await asyncio.wait_for(ready, 60)

    await asyncio.gather(*(one(i) for i in range(n)))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "go": the publisher starts now
    for reader in readers:
        reader.counting = True
    await asyncio.sleep(seconds + 0.5)
    for reader in readers:
        reader.counting = False
    result = {
        "delivered": sum(r.count for r in readers),
        "latencies_ms": [round(1000 * x, 2) for r in readers for x in r.latencies],
        "closed": sum(1 for r in readers if r.closed_code is not None),
    }
    print("result " + json.dumps(result), flush=True)
    for reader in readers:
        if reader.transport is not None:
            reader.transport.close()


def run_subscribers(args: argparse.Namespace) -> None:
    """Entry of the subscriber process."""
    import uvloop

    uvloop.run(_subscribers(args.url, args.n, args.token, args.channel, args.max_rate, args.seconds))


# ---------------------------------------------------------------- orchestration


@dataclass
class Case:
    subscribers: int
    max_rate: (
        float | None
    )  # the dashboard's coalesced rate on the hub; the bare server publishes at that rate


@dataclass
class Outcome:
    delivered_per_s: float
    expected_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    cpu: float
    closed: int

    @property
    def us_per_delivery(self) -> float:
        """Server CPU microseconds per delivered message."""
        return 1e6 * self.cpu / self.delivered_per_s if self.delivered_per_s else 0.0


def _child(role: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, str(HERE), "--role", role, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _await_line(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child exited before printing {prefix!r}")
        if line.startswith(prefix):
            return line[len(prefix) :].strip()


def measure(
    server: subprocess.Popen[str],
    port: int,
    info: dict[str, str],
    case: Case,
    seconds: float,
    hub: bool,
    client_procs: int = 1,
) -> Outcome:
    """Connect the subscribers (split over `client_procs` processes), publish for `seconds`, collect the numbers."""
    rate = RATE_HZ if hub or case.max_rate is None else case.max_rate
    clients = []
    for i in range(client_procs):
        share = case.subscribers // client_procs + (1 if i < case.subscribers % client_procs else 0)
        extra = [
            "--url",
            f"ws://127.0.0.1:{port}",
            "--n",
            str(share),
            "--seconds",
            str(seconds),
            "--token",
            info["token"],
            "--channel",
            info["channel"],
        ]
        if hub and case.max_rate:
            extra += ["--max-rate", str(case.max_rate)]
        clients.append(_child("subscribers", *extra))
    for client in clients:
        _await_line(client, "ready")
    assert server.stdin is not None
    for client in clients:
        assert client.stdin is not None
        client.stdin.write("go\n")
        client.stdin.flush()
    server.stdin.write(f"run {seconds} {rate}\n")
    server.stdin.flush()
    done = json.loads(_await_line(server, "done"))
    results = [json.loads(_await_line(client, "result")) for client in clients]
    for client in clients:
        client.wait(timeout=60)
    latencies = sorted(x for result in results for x in result["latencies_ms"])
    expected_rate = case.max_rate or RATE_HZ
    return Outcome(
        delivered_per_s=sum(result["delivered"] for result in results) / seconds,
        expected_per_s=case.subscribers * expected_rate,
        p50_ms=latencies[len(latencies) // 2] if latencies else None,
        p99_ms=latencies[int(len(latencies) * 0.99)] if latencies else None,
        cpu=done["cpu"],
        closed=sum(result["closed"] for result in results),
    )


def start_server(role: str, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """A server child process and what it printed when ready (token and channel)."""
    proc = _child(role, "--port", str(port))
    return proc, json.loads(_await_line(proc, "ready"))


def stop_server(proc: subprocess.Popen[str]) -> None:
    """Ask a server child to quit and wait for it."""
    assert proc.stdin is not None
    proc.stdin.write("quit\n")
    proc.stdin.flush()
    proc.wait(timeout=60)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    """Parse arguments; run a child role or the whole benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 subscribers, 3 s each")
    parser.add_argument("--seconds", type=float, default=None, help="publishing time per case")
    parser.add_argument(
        "--subs", default=None, help="comma-separated subscriber counts (e.g. 1000 or 5000:20)"
    )
    parser.add_argument(
        "--client-procs",
        type=int,
        default=2,
        help="subscriber processes per case (the same for both servers)",
    )
    parser.add_argument("--only", choices=("hub", "bare"), default=None, help="measure one server only")
    parser.add_argument("--role", default="main", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--token", default="", help=argparse.SUPPRESS)
    parser.add_argument("--channel", default="", help=argparse.SUPPRESS)
    parser.add_argument("--max-rate", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "hub-server":
        serve_hub(args.port)
        return
    if args.role == "bare-server":
        serve_bare(args.port)
        return
    if args.role == "subscribers":
        run_subscribers(args)
        return

    seconds = args.seconds or (3.0 if args.quick else 10.0)
    cases = [Case(100, None), Case(1000, None)]
    if not args.quick:
        cases.append(Case(5000, 20.0))
    if args.subs:
        cases = [
            Case(int(n), float(r) if r else None)
            for n, _, r in (item.partition(":") for item in args.subs.split(","))
        ]
    from socket import socket

    def free_port() -> int:
        with socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    outcomes: dict[tuple[int, str], Outcome] = {}
    servers: dict[str, tuple[int, subprocess.Popen[str], dict[str, str]]] = {}
    try:
        for role, label in (("hub-server", "hub"), ("bare-server", "bare")):
            if args.only and label != args.only:
                continue
            port = free_port()
            servers[label] = (port, *start_server(role, port))
            print(f"  {label} server pid {servers[label][1].pid}", file=sys.stderr, flush=True)
        # Interleaved, so that whatever else the machine is doing weighs on both alike.
        for case in cases:
            for label, (port, proc, info) in servers.items():
                outcomes[(case.subscribers, label)] = measure(
                    proc, port, info, case, seconds, label == "hub", args.client_procs
                )
                print(f"  measured {label} x {case.subscribers}", file=sys.stderr, flush=True)
    finally:
        for _, proc, _ in servers.values():
            stop_server(proc)

    print(
        f"\nfan-out: one publisher at {RATE_HZ:.0f} Hz, ~1.5 KB frames, {seconds:.0f} s per case, "
        f"{args.client_procs} subscriber processes, {os.cpu_count()} cores"
    )
    header = (
        f"{'subs':>6} {'rate':>6} {'server':>6} {'msgs/s':>9} {'expected':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'cpu':>5} {'us/msg':>7} {'cut':>4} {'msgs/s ratio':>12} {'capacity ratio':>14}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        bare = outcomes.get((case.subscribers, "bare"))
        for label in ("hub", "bare"):
            o = outcomes.get((case.subscribers, label))
            if o is None:
                continue
            hub = label == "hub"
            ratio = (
                o.delivered_per_s / bare.delivered_per_s if hub and bare and bare.delivered_per_s else None
            )
            # Capacity: deliveries one core could make at this CPU cost per delivery, hub over bare.
            capacity = (
                bare.us_per_delivery / o.us_per_delivery if hub and bare and o.us_per_delivery else None
            )
            rate = f"{case.max_rate:.0f}Hz" if case.max_rate else f"{RATE_HZ:.0f}Hz"
            print(
                f"{case.subscribers:>6} {rate:>6} {label:>6} {o.delivered_per_s:>9.0f} {o.expected_per_s:>9.0f} "
                f"{_fmt(o.p50_ms, '.1f'):>7} {_fmt(o.p99_ms, '.1f'):>7} {o.cpu:>5.0%} "
                f"{o.us_per_delivery:>7.1f} {o.closed:>4} {_fmt(ratio, '.2f'):>12} {_fmt(capacity, '.2f'):>14}"
            )


if __name__ == "__main__":
    main()
