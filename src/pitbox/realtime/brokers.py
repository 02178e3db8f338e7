"""Brokers carry published messages to every instance's hub: in-process, Redis pub/sub, or NATS.

Every instance receives every message (one Redis channel / NATS subject for the hub) and delivers it to its own
subscribers; the publishing instance hears its own messages back through the broker, so all instances see one
order. While the broker is away an instance delivers what it publishes to its own subscribers directly (the
other instances miss it and say so with a gap), and goes back through the broker once it reconnects.
A message on the wire is `<channel>\\n<data JSON>`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from pitbox.realtime.errors import BrokerUnavailable

log = structlog.get_logger(__name__)

Deliver = Callable[[str, bytes], None]
BrokerGap = Callable[[], None]

REDIS_CHANNEL = "pitbox:hub"
NATS_SUBJECT = "pitbox.hub"
OUTBOUND_LIMIT = 100_000
#: Seconds a closing broker waits for what was published before to reach the broker (a CLI command's
#: announcement, the last messages before a shutdown).
FLUSH_S = 1.0


class Broker(Protocol):
    """Moves (channel, data JSON) from `publish` to the `deliver` callback of every instance."""

    name: str

    async def start(self, deliver: Deliver, on_gap: BrokerGap) -> None: ...

    def publish(self, channel: str, data_json: bytes) -> None: ...

    async def close(self) -> None: ...


class LocalBroker:
    """The in-process broker: one instance, delivery in the publisher's call."""

    name = "local"

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver, on_gap: BrokerGap) -> None:
        """Remember where to deliver."""
        self._deliver = deliver

    def publish(self, channel: str, data_json: bytes) -> None:
        """Deliver at once to this instance's subscribers."""
        if self._deliver is not None:
            self._deliver(channel, data_json)

    async def close(self) -> None:
        """Stop delivering."""
        self._deliver = None


def _wire(channel: str, data_json: bytes) -> bytes:
    return channel.encode() + b"\n" + data_json


def _unwire(payload: bytes) -> tuple[str, bytes] | None:
    channel, sep, data_json = payload.partition(b"\n")
    return (channel.decode(), data_json) if sep else None


class _QueuedBroker:
    """Shared by the network brokers: `publish` queues (never blocks), one task sends in batches."""

    name = "queued"

    def __init__(self) -> None:
        self._outbound: asyncio.Queue[bytes] = asyncio.Queue(OUTBOUND_LIMIT)
        self._tasks: list[asyncio.Task[None]] = []
        self._dropped = 0
        self._deliver: Deliver | None = None
        self._on_gap: BrokerGap | None = None
        self.connected = False

    def publish(self, channel: str, data_json: bytes) -> None:
        """Queue the message for the broker (when far behind, drop it and log); while the broker is away,
        deliver it to this instance's own subscribers at once."""
        if not self.connected:
            if self._deliver is not None:
                self._deliver(channel, data_json)
            return
        try:
            self._outbound.put_nowait(_wire(channel, data_json))
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.error("broker_backlog_full", broker=self.name, dropped=self._dropped)

    async def _send_batches(self) -> None:
        while True:
            batch = [await self._outbound.get()]
            while not self._outbound.empty() and len(batch) < 512:
                batch.append(self._outbound.get_nowait())
            try:
                await self._send(batch)
            except Exception:
                try:
                    await self._send(batch)
                except Exception as exc:
                    log.error("broker_publish_failed", broker=self.name, error=str(exc), lost=len(batch))
                    self._deliver_here(batch)
                    await asyncio.sleep(0.5)
            for _ in batch:
                self._outbound.task_done()

    async def _flush(self) -> None:
        """Wait (FLUSH_S at most) until everything queued was handed to the broker."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_S):
                await self._outbound.join()

    def _deliver_here(self, batch: list[bytes]) -> None:
        """Messages the broker did not take still reach this instance's subscribers."""
        if self._deliver is None:
            return
        for payload in batch:
            parsed = _unwire(payload)
            if parsed is not None:
                self._deliver(*parsed)

    def _connection_lost(self, error: str) -> None:
        if self.connected:
            self.connected = False
            log.error("broker_connection_lost", broker=self.name, error=error)
            if self._on_gap is not None:
                self._on_gap()

    def _connection_regained(self) -> None:
        if not self.connected:
            self.connected = True
            log.info("broker_reconnected", broker=self.name)

    async def _send(self, batch: list[bytes]) -> None:
        raise NotImplementedError

    async def _stop_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class RedisBroker(_QueuedBroker):
    """Redis pub/sub across instances (REDIS_URL)."""

    name = "redis"

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._redis: Any = None

    async def start(self, deliver: Deliver, on_gap: BrokerGap) -> None:
        """Connect, subscribe to the hub channel, and start the reader and sender tasks."""
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(self._url)
        try:
            await self._redis.ping()
        except (OSError, aioredis.RedisError) as exc:
            await self._redis.aclose()
            raise BrokerUnavailable(f"cannot reach Redis at REDIS_URL: {exc}") from exc
        self._deliver, self._on_gap = deliver, on_gap
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(REDIS_CHANNEL)
        self.connected = True
        self._tasks = [
            asyncio.create_task(self._read(pubsub, deliver)),
            asyncio.create_task(self._send_batches()),
        ]
        log.info("broker_started", broker="redis")

    async def _read(self, pubsub: Any, deliver: Deliver) -> None:
        import redis.asyncio as aioredis

        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except (OSError, aioredis.RedisError) as exc:
                # redis-py reconnects and resubscribes on a later read; what was published meanwhile is lost.
                self._connection_lost(str(exc))
                await asyncio.sleep(0.5)
                continue
            if message is not None and message.get("type") == "subscribe":
                self._connection_regained()  # subscribed again: our own messages come back through Redis
                continue
            if message is None or message.get("type") != "message":
                continue
            parsed = _unwire(message["data"])
            if parsed is not None:
                deliver(*parsed)

    async def _send(self, batch: list[bytes]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for payload in batch:
                pipe.publish(REDIS_CHANNEL, payload)
            await pipe.execute()

    async def close(self) -> None:
        """Send what is queued, stop the tasks and close the connections."""
        await self._flush()
        await self._stop_tasks()
        if self._redis is not None:
            await self._redis.aclose()


class NatsBroker(_QueuedBroker):
    """NATS core pub/sub across instances (NATS_URL)."""

    name = "nats"

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._nc: Any = None

    async def start(self, deliver: Deliver, on_gap: BrokerGap) -> None:
        """Connect, subscribe to the hub subject, and start the sender task."""
        import nats

        async def on_message(msg: Any) -> None:
            parsed = _unwire(msg.data)
            if parsed is not None:
                deliver(*parsed)

        async def on_disconnected() -> None:
            self._connection_lost("disconnected")

        async def on_reconnected() -> None:
            self._connection_regained()  # nats-py has subscribed again before it calls this

        async def on_error(exc: Exception) -> None:
            log.error("broker_error", broker="nats", error=str(exc))

        try:
            self._nc = await nats.connect(
                self._url,
                connect_timeout=3,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                disconnected_cb=on_disconnected,
                reconnected_cb=on_reconnected,
                error_cb=on_error,
            )
        except Exception as exc:  # nats raises its own errors, OSError and TimeoutError
            raise BrokerUnavailable(f"cannot reach NATS at NATS_URL: {exc}") from exc
        self._deliver, self._on_gap = deliver, on_gap
        await self._nc.subscribe(NATS_SUBJECT, cb=on_message, pending_msgs_limit=1_000_000)
        await self._nc.flush()
        self.connected = True
        self._tasks = [asyncio.create_task(self._send_batches())]
        log.info("broker_started", broker="nats")

    async def _send(self, batch: list[bytes]) -> None:
        for payload in batch:
            await self._nc.publish(NATS_SUBJECT, payload)

    async def close(self) -> None:
        """Send what is queued, stop the sender, drain and close the connection."""
        await self._flush()
        await self._stop_tasks()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.drain()


def broker_for(redis_url: str | None, nats_url: str | None) -> Broker:
    """The broker the settings ask for: Redis, NATS, or in-process."""
    if redis_url and nats_url:
        log.warning("both_brokers_configured", using="redis")
    if redis_url:
        return RedisBroker(redis_url)
    if nats_url:
        return NatsBroker(nats_url)
    return LocalBroker()
