"""The relay agent: receives a sim's datagrams (or polls iRacing), spools samples, sends them; `Relay.run`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
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
#: Samples are committed in groups: within 30 ms with --live (latency), 100 ms otherwise (CPU), or at 256.
_FLUSH_LIVE_S, _FLUSH_S, _FLUSH_ROWS = 0.03, 0.1, 256


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


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP "port unreachable" after a send to a sim that is not running (AC): retried by the hello loop.
        self.relay.last_receive_error = f"{type(exc).__name__}: {exc}"


class Relay:
    """One relay: `await run(stop)`; `bound` is the UDP address once listening, `ready` is set then."""

    def __init__(self, options: RelayOptions, *, status: StatusLine | None = None) -> None:
        if options.source not in SOURCES:
            raise ValueError(f"unknown source {options.source!r}")
        self.options = options
        self.status = status or StatusLine(quiet=options.quiet, log_json=options.log_json)
        self.spool = Spool(options.spool_dir, max_bytes=options.spool_max_bytes)
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
            batch_s=options.batch_s,
            announce=self._event,
        )
        self.recorder = CaptureWriter(options.record) if options.record else None
        self.bound: tuple[str, int] | None = None
        self.ready = asyncio.Event()
        self.last_receive_error: str | None = None
        self._receiver: _Receiver | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._rate: list[tuple[float, int]] = []
        self._full_announced = False

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

    def received(self, data: bytes, addr: tuple[str, int]) -> None:
        """One datagram from the sim: record, decode, answer (AC), spool."""
        if self.recorder is not None:
            self.recorder.write(data, time.monotonic())
        decoder = self.decoder
        assert decoder is not None
        samples = decoder.decode(data)
        if decoder.outbox and self._receiver is not None and self._receiver.transport is not None:
            for reply in decoder.outbox:
                self._receiver.transport.sendto(reply, None if self.options.connect else addr)
            decoder.outbox.clear()
        if samples:
            self.tracker.feed(samples)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self.spool.buffered >= _FLUSH_ROWS:
            self._flush()
        elif self._flush_handle is None:
            delay = _FLUSH_LIVE_S if self.options.live else _FLUSH_S
            self._flush_handle = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.spool.flush(seal=self.options.live and self.tracker.all_started()) and self.options.live:
            self.sender.wake.set()  # batched mode polls: a batch is due once a second at most
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
                stack.enter_context(_cancelling(asyncio.create_task(self._housekeeping(stop))))
                self.ready.set()
                await stop.wait()
        finally:
            self.tracker.end_all("relay_stopped")
            self._flush()
            sender_stop.set()
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
        if self.spec.connects:
            remote = options.connect or ("127.0.0.1", self.spec.port)
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Receiver(self), remote_addr=remote
            )
        else:
            local = options.listen or ("0.0.0.0", self.spec.port)  # noqa: S104 - sims on consoles send from the LAN
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Receiver(self), local_addr=local
            )
        sock = transport.get_extra_info("socket")
        for option in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, _RECEIVE_BUFFER)
                break
            except OSError:
                continue
        self._receiver = protocol
        self.bound = sock.getsockname()[:2]
        if self.spec.connects:
            self._hello_task = asyncio.create_task(self._hello(), name="relay-hello")

    async def _hello(self) -> None:
        """Ask the sim (Assetto Corsa) for telemetry every second until it answers."""
        decoder = self.decoder
        assert isinstance(decoder, AssettoCorsaDecoder)
        while not decoder.subscribed:
            if self._receiver is not None and self._receiver.transport is not None:
                self._receiver.transport.sendto(decoder.hello())
            await asyncio.sleep(1.0)

    async def _close_udp(self) -> None:
        hello = getattr(self, "_hello_task", None)
        if hello is not None:
            hello.cancel()
        decoder = self.decoder
        transport = self._receiver.transport if self._receiver else None
        if isinstance(decoder, AssettoCorsaDecoder) and decoder.subscribed and transport is not None:
            transport.sendto(decoder.goodbye())
        if transport is not None:
            transport.close()

    async def _poll_iracing(self, stop: asyncio.Event) -> None:
        poller = self.poller
        assert poller is not None
        while not stop.is_set():
            samples = poller.poll()
            if samples:
                self.tracker.feed(samples)
                self._schedule_flush()
            await asyncio.sleep(1 / 60 if poller.connected() else 1.0)

    async def _housekeeping(self, stop: asyncio.Event) -> None:
        last_status = 0.0
        while not stop.is_set():
            await asyncio.sleep(0.5)
            self.tracker.check_idle()
            self._flush()
            quiet = self.status.quiet and not self.status.log_json
            if not quiet and time.monotonic() - last_status >= self.options.status_every_s:
                last_status = time.monotonic()
                self.status.update(self.counters())


@contextlib.contextmanager
def _cancelling(task: asyncio.Task[Any]) -> Any:
    try:
        yield task
    finally:
        task.cancel()
