"""The relay agent: receives a sim's datagrams (or polls iRacing), spools samples, sends them; `Relay.run`.

The relay works in ticks, every 250 ms (75 ms with --live): it reads every datagram waiting in its UDP
socket, decodes them, commits the samples to the spool (sealing the batches that are due in the same
commit) and wakes the sender. A waking of the process costs far more CPU than the work of one datagram,
so the socket is not watched datagram by datagram: the kernel queues them (the relay asks for an 8 MB
buffer) and stamps each with its arrival time (SO_TIMESTAMPNS, Linux; elsewhere the time it is read).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from pitbox.client import PitboxClient
from pitbox.relay.capture import CaptureWriter
from pitbox.relay.sender import Sender
from pitbox.relay.sessions import SessionTracker, StartWhen
from pitbox.relay.sources import SOURCES, DecodeCounts, Decoder, make_decoder
from pitbox.relay.sources.ac import AssettoCorsaDecoder
from pitbox.relay.sources.iracing import IRacingPoller
from pitbox.relay.status import StatusLine
from pitbox.relay.store import Spool

__all__ = ["Relay", "RelayOptions"]

log = structlog.get_logger(__name__)

_RECEIVE_BUFFER = 8 * 1024 * 1024
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
#: The kernel's arrival time of each datagram (struct timespec); Linux only.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35) if sys.platform == "linux" else None
_TIMESPEC = struct.Struct("@ll")
#: A tick every 250 ms, every 75 ms with --live (latency). After a tick that found nothing the relay
#: waits for the next datagram (the loop watches the socket; ticks go on every 250 ms for housekeeping).
#: A tick reads at most `_READ_MAX` datagrams (a burst: the next tick follows at once).
_TICK_S, _TICK_LIVE_S, _TICK_IDLE_S, _READ_MAX = 0.25, 0.075, 0.25, 2048
#: With --record where the kernel gives no arrival stamps (Windows), so that a capture keeps its timing.
_TICK_RECORD_S = 0.01
_HOUSEKEEPING_S = 0.5


@dataclass
class RelayOptions:
    """Everything `pitbox relay` takes (the CLI and the config file fill it)."""

    source: str
    server: str
    key: str
    driver: str | None = None
    listen: tuple[str, int] | None = None
    connect: tuple[str, int] | None = None
    spool_dir: Path = field(default_factory=lambda: Path("relay-spool"))
    spool_max_bytes: int | None = 1024 * 1024 * 1024
    idle_end_s: float = 30.0
    live: bool = False
    batch_s: float = 1.0
    all_cars: bool = False
    record: Path | None = None
    start_when: StartWhen = "moving"
    pre_roll_s: float = 60.0
    sim: str | None = None
    irsdk_file: Path | None = None
    quiet: bool = False
    log_json: bool = False
    status_every_s: float = 1.0
    drain_s: float = 10.0


class Relay:
    """One relay: `await run(stop)`; `bound` is the UDP address once listening, `ready` is set then."""

    def __init__(self, options: RelayOptions, *, status: StatusLine | None = None) -> None:
        if options.source not in SOURCES:
            raise ValueError(f"unknown source {options.source!r}")
        self.options = options
        self.status = status or StatusLine(quiet=options.quiet, log_json=options.log_json)
        self.spool = Spool(
            options.spool_dir, max_bytes=options.spool_max_bytes, batch_s=options.batch_s, live=options.live
        )
        self.tracker = SessionTracker(
            self.spool,
            idle_end_s=options.idle_end_s,
            start_when=options.start_when,
            pre_roll_s=options.pre_roll_s,
            announce=self._event,
        )
        self.spec = SOURCES[options.source]
        self.decoder: Decoder | None = (
            make_decoder(options.source, all_cars=options.all_cars, sim=options.sim)
            if self.spec.udp
            else None
        )
        self.poller = IRacingPoller(test_file=options.irsdk_file) if not self.spec.udp else None
        self.client = PitboxClient(options.server, token=options.key, timeout=15.0)
        self.sender = Sender(
            self.spool,
            self.client,
            driver_id=options.driver,
            live=options.live,
            announce=self._event,
        )
        self.recorder = CaptureWriter(options.record) if options.record else None
        self.bound: tuple[str, int] | None = None
        self.ready = asyncio.Event()
        self.last_receive_error: str | None = None
        self._socket: socket.socket | None = None
        self._stamped = False
        self._watching = False
        self._woken: asyncio.Future[None] | None = None
        self._rate: list[tuple[float, int]] = []
        self._full_announced = False
        self._decoder_failures: set[type[Exception]] = set()

    @property
    def counts(self) -> DecodeCounts:
        """What the decoder (or the iRacing poller) saw."""
        source = self.decoder if self.decoder is not None else self.poller
        assert source is not None
        return source.counts

    def counters(self) -> dict[str, Any]:
        """The numbers the status line shows (also in --log-json status events)."""
        counts = self.counts
        now = time.monotonic()
        self._rate.append((now, counts.datagrams))
        self._rate = [(at, n) for at, n in self._rate if now - at <= 2.0]
        first_at, first_n = self._rate[0]
        rate = (counts.datagrams - first_n) / (now - first_at) if now > first_at else 0.0
        return {
            "packets": counts.datagrams,
            "packetsPerS": rate,
            "samples": counts.samples,
            "skipped": counts.skipped,
            "truncated": counts.truncated,
            "unknown": counts.unknown,
            "foreign": counts.foreign,
            "spooled": self.spool.spooled_this_run,
            "sent": self.sender.stats.sent,
            "acked": self.sender.stats.acked,
            "backlog": self.spool.backlog(),
            "dropped": self.spool.dropped,
            "rejected": self.sender.stats.rejected,
            "lastError": self.sender.stats.last_error or self.last_receive_error,
        }

    def _event(self, name: str, fields: dict[str, object]) -> None:
        self.status.event(name, fields, loud=name in ("batch_rejected",))

    def received(self, data: bytes, addr: tuple[str, int], at: float) -> None:
        """One datagram from the sim, arrived `at` (wall clock): record, decode, answer (AC), spool."""
        if self.recorder is not None:
            self.recorder.write(data, at)
        decoder = self.decoder
        assert decoder is not None
        try:
            samples = decoder.decode(data)
        except Exception as error:  # a decoder's bug on one datagram must not stop the relay: skip it
            decoder.counts.foreign += 1
            decoder.outbox.clear()
            if type(error) not in self._decoder_failures:  # once per kind of failure, not per datagram
                self._decoder_failures.add(type(error))
                log.warning("datagram_undecodable", source=decoder.source, error=repr(error)[:200])
            return
        if decoder.outbox:
            for reply in decoder.outbox:
                self._send_to_sim(reply, addr)
            decoder.outbox.clear()
        if samples:
            self.tracker.feed(samples, at)

    def _read_datagrams(self) -> int:
        """Every datagram waiting in the socket (up to `_READ_MAX`) through `received`; how many."""
        sock = self._socket
        if sock is None:
            return 0
        read_at = time.time()
        count = 0
        while count < _READ_MAX:
            try:
                if self._stamped:
                    data, ancillary, _flags, addr = sock.recvmsg(65535, _ANCILLARY)
                    at = _arrival(ancillary, read_at)
                else:
                    data, addr = sock.recvfrom(65535)
                    at = read_at
            except (BlockingIOError, InterruptedError):
                break
            except OSError as error:
                # ICMP "port unreachable" after a send to a sim that is not running (AC): the hello goes on.
                self.last_receive_error = f"{type(error).__name__}: {error}"
                count += 1
                continue
            count += 1
            self.received(data, addr, at)
        return count

    def _send_to_sim(self, payload: bytes, addr: tuple[str, int] | None = None) -> None:
        sock = self._socket
        if sock is None:
            return
        try:
            if self.spec.connects:
                sock.send(payload)
            else:
                sock.sendto(payload, addr)  # type: ignore[arg-type]
        except OSError as error:
            self.last_receive_error = f"{type(error).__name__}: {error}"

    def _flush(self) -> None:
        """Commit what was spooled (sealing due batches), wake the sender when there is work, say when the
        spool is full or has room again."""
        self.spool.flush()
        if self.spool.has_work:
            self.sender.wake.set()
        if self.spool.full and not self._full_announced:
            self._full_announced = True
            self.status.event(
                "spool_full",
                {
                    "spool": str(self.spool.path),
                    "maxBytes": self.spool.max_bytes,
                    "action": "new samples are DROPPED until the server takes the backlog",
                },
                loud=True,
            )
        elif not self.spool.full and self._full_announced:
            self._full_announced = False
            self.status.event("spool_has_room", {"dropped": self.spool.dropped}, loud=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Receive, spool and send until `stop` is set; then end the sessions and drain for a while."""
        loop = asyncio.get_running_loop()
        sender_stop = asyncio.Event()
        sender_task = asyncio.create_task(self.sender.run(sender_stop), name="relay-sender")
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self.spec.udp:
                    await self._open_udp(loop)
                    stack.push_async_callback(self._close_udp)
                else:
                    assert self.poller is not None
                    stack.enter_context(contextlib.closing(self.poller))
                    stack.enter_context(_cancelling(asyncio.create_task(self._poll_iracing(stop))))
                ticks = stack.enter_context(_cancelling(asyncio.create_task(self._ticks(stop))))
                self.ready.set()
                stopped = stack.enter_context(_cancelling(asyncio.create_task(stop.wait())))
                await asyncio.wait((stopped, ticks), return_when=asyncio.FIRST_COMPLETED)
                if ticks.done():
                    ticks.result()  # a tick that failed stops the relay (after it sent what it could)
        finally:
            self.tracker.end_all("relay_stopped")
            self._flush()
            sender_stop.set()
            self.sender.wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await sender_task
            drained = await self.sender.drain(self.options.drain_s)
            self.status.update(self.counters())
            self.status.event("stopped", {"drained": drained, "backlog": self.spool.backlog()})
            self.status.close()
            await self.sender.close()
            await self.client.close()
            if self.recorder is not None:
                self.recorder.close()
            self.spool.close()

    async def _open_udp(self, loop: asyncio.AbstractEventLoop) -> None:
        options = self.options
        connects = self.spec.connects
        if connects:
            host, port = options.connect or ("127.0.0.1", self.spec.port)
        else:
            host, port = options.listen or ("0.0.0.0", self.spec.port)  # noqa: S104 - consoles send from the LAN
        addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP)
        for number, (family, _type, _proto, _name, address) in enumerate(addresses, 1):
            try:
                sock = self._udp_socket(family, address, connects=connects)
                break
            except OSError:
                if number == len(addresses):
                    raise
        self._socket = sock
        self.bound = sock.getsockname()[:2]
        if connects:
            self._hello_task = asyncio.create_task(self._hello(), name="relay-hello")

    def _udp_socket(self, family: int, address: Any, *, connects: bool) -> socket.socket:
        """A non-blocking UDP socket bound to (or connected to) `address`, with a large receive buffer and,
        where the kernel has them, arrival stamps."""
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            for option in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, _RECEIVE_BUFFER)
                    break
                except OSError:
                    continue
            self._stamped = False
            if _SO_TIMESTAMPNS is not None and hasattr(sock, "recvmsg"):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                    self._stamped = True
            if connects:
                sock.connect(address)
            else:
                sock.bind(address)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _hello(self) -> None:
        """Ask the sim (Assetto Corsa) for telemetry every second until it answers."""
        decoder = self.decoder
        assert isinstance(decoder, AssettoCorsaDecoder)
        while not decoder.subscribed:
            self._send_to_sim(decoder.hello())
            await asyncio.sleep(1.0)

    async def _close_udp(self) -> None:
        hello = getattr(self, "_hello_task", None)
        if hello is not None:
            hello.cancel()
        self._read_datagrams()  # what the kernel holds still counts
        decoder = self.decoder
        if isinstance(decoder, AssettoCorsaDecoder) and decoder.subscribed:
            self._send_to_sim(decoder.goodbye())
        self._unwatch(asyncio.get_running_loop())
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    async def _poll_iracing(self, stop: asyncio.Event) -> None:
        poller = self.poller
        assert poller is not None
        while not stop.is_set():
            samples = poller.poll()
            if samples:
                self.tracker.feed(samples)
            await asyncio.sleep(1 / 60 if poller.connected() else 1.0)

    async def _ticks(self, stop: asyncio.Event) -> None:
        """Read, spool and commit every tick; end idle sessions and show the status twice a second."""
        loop = asyncio.get_running_loop()
        commit_s = _TICK_LIVE_S if self.options.live else _TICK_S
        read_s = commit_s
        if self.recorder is not None and self._socket is not None and not self._stamped:
            read_s = _TICK_RECORD_S  # no arrival stamps from the kernel: the read time must be close
        pause = read_s
        next_housekeeping = next_status = next_commit = 0.0
        while not stop.is_set():
            await self._pause(loop, pause)
            read = self._read_datagrams()
            now = time.monotonic()
            if now >= next_housekeeping:
                next_housekeeping = now + _HOUSEKEEPING_S
                self.tracker.check_idle()
            busy = read > 0 or self.spool.buffered > 0
            if read_s == commit_s or now >= next_commit:
                next_commit = now + commit_s
                self._commit()
            quiet = self.status.quiet and not self.status.log_json
            if not quiet and now >= next_status:
                next_status = now + self.options.status_every_s
                self.status.update(self.counters())
            if read >= _READ_MAX:
                pause = 0.0
            elif busy:
                pause = read_s
            else:
                pause = max(_TICK_IDLE_S, read_s)
                self._watch(loop)

    def _commit(self) -> None:
        try:
            self._flush()
        except sqlite3.Error as error:  # the disk: the samples stay buffered and the next tick tries again
            self.last_receive_error = f"spool: {type(error).__name__}: {error}"
            self.status.event("spool_error", {"error": str(error)}, loud=True)

    async def _pause(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        """Sleep until the next tick is due, or until a datagram arrives while the socket is watched."""
        woken = self._woken = loop.create_future()
        timer = loop.call_later(seconds, _resolve, woken)
        try:
            await woken
        finally:
            timer.cancel()
            self._woken = None
            self._unwatch(loop)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have the loop wake the next tick at the first datagram (the relay was idle). Not where the loop
        cannot watch a socket (Windows' proactor loop): there idle ticks read it every 250 ms."""
        if self._socket is None or self._watching:
            return
        with contextlib.suppress(NotImplementedError):
            loop.add_reader(self._socket.fileno(), self._readable)
            self._watching = True

    def _unwatch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._watching and self._socket is not None:
            loop.remove_reader(self._socket.fileno())
        self._watching = False

    def _readable(self) -> None:
        self._unwatch(asyncio.get_running_loop())
        if self._woken is not None:
            _resolve(self._woken)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0


def _arrival(ancillary: list[tuple[int, int, bytes]], default: float) -> float:
    """The kernel's arrival stamp of a datagram (seconds, wall clock), or `default`."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return float(seconds + nanoseconds * 1e-9)
    return default


@contextlib.contextmanager
def _cancelling(task: asyncio.Task[Any]) -> Any:
    try:
        yield task
    finally:
        task.cancel()
