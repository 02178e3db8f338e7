"""The hub: channels with per-channel sequence numbers, fan-out of encoded frames, history for catch-up.

Each published message is encoded once into a `message` frame (realtime/frames.py: its JSON and its whole
WebSocket frame bytes, built once); the same frame is put in the outbox of every subscriber. Telemetry and video
subscribers may ask for a maximum rate: they share one coalescing group per (channel, rate) that forwards only
the latest frame. `session:` and `ai:` channels keep a short history so a client that reconnects with the last
sequence it saw gets what it missed, or is told plainly to resync.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from pitbox.lifecycle import Lifecycle, Periodic
from pitbox.realtime.brokers import Broker
from pitbox.realtime.errors import InvalidMaxRate, TooManySubscriptions
from pitbox.realtime.frames import CLOSE_GOING_AWAY, ServerFrame, control_frame, encode_data, message_frame
from pitbox.realtime.outbox import Outbox

log = structlog.get_logger(__name__)

HISTORY_KINDS = frozenset({"session", "ai"})
#: Channels between the instances themselves (never a socket's: no client may subscribe to them).
INTERNAL_PREFIX = "internal:"
COALESCING_KINDS = frozenset({"telemetry", "video"})
KEEPALIVE_FRAME = '{"type":"keepalive"}'


@dataclass(frozen=True)
class HubLimits:
    """The hub's bounds; the defaults are documented in docs/websocket.md (the app takes the ones that are
    settings from Settings: WS_RECHECK_S, WS_AUTH_TIMEOUT_S, WS_KEEPALIVE_S, WS_HISTORY_S)."""

    queue_frames: int = 1024
    subscriptions_per_socket: int = 100
    sockets_per_caller: int = 64
    history_messages: int = 1000
    history_seconds: float = 300.0
    #: Bytes of history per channel (frames as held: JSON and wire copy): telemetry also flows on `session:`
    #: channels, and without a byte bound each active session held up to 5 minutes of it here (bench/soak.py).
    history_bytes: int = 512 * 1024
    keepalive_seconds: float = 25.0
    max_rate: float = 240.0
    #: The slowest `maxRate` (messages per second): one every ten seconds. Slower is no live view (and every
    #: distinct rate is a group of its own to flush).
    min_rate: float = 0.1
    shutdown_flush_seconds: float = 5.0
    #: Seconds between two re-checks of a socket's credential and subscriptions (WS_RECHECK_S); 0: none.
    recheck_seconds: float = 60.0
    #: Seconds a socket opened without a token has to send its `auth` frame (WS_AUTH_TIMEOUT_S).
    auth_timeout_seconds: float = 10.0


class _Phase:
    """Members of a rate group forwarded on one grid: at most once per interval, the latest frame."""

    __slots__ = ("members", "offset", "next_at", "latest", "timer")

    def __init__(self, offset: float) -> None:
        self.members: set[Outbox] = set()
        self.offset = offset
        self.next_at = 0.0
        self.latest: ServerFrame | None = None
        self.timer: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _RateGroup:
    """Subscribers of one channel at one maximum rate: each receives the latest frame at most `rate` times/s.

    Members are spread over `PHASES` phases whose grids are a fraction of an interval apart, so a 60 Hz stream
    read at 20 Hz reaches a third of them on each source frame instead of all of them on every third: the
    work (and the wait of the last socket served) per frame is a third. Within a phase, forwards run on a grid
    `interval` apart; a frame arriving up to a quarter interval before its grid point goes out at once (the
    grid then moves one interval on, so the average never exceeds `rate`). A frame held between grid points is
    sent by a timer only when no newer frame came by then (a source that slowed down or stopped).
    """

    PHASES = 3

    def __init__(self, rate: float, loop: asyncio.AbstractEventLoop) -> None:
        self.interval = 1.0 / rate
        self._early = self.interval / 4
        self._loop = loop
        self._phases = [_Phase(index * self.interval / self.PHASES) for index in range(self.PHASES)]
        self._phase_of: dict[Outbox, _Phase] = {}
        self._started = False

    def __len__(self) -> int:
        return len(self._phase_of)

    def add(self, outbox: Outbox) -> None:
        """A new member, in the phase with the fewest."""
        if outbox not in self._phase_of:
            phase = min(self._phases, key=lambda p: len(p.members))
            phase.members.add(outbox)
            self._phase_of[outbox] = phase

    def discard(self, outbox: Outbox) -> None:
        """Forget a member."""
        phase = self._phase_of.pop(outbox, None)
        if phase is not None:
            phase.members.discard(outbox)
            if not phase.members:
                phase.cancel()
                phase.latest = None

    def offer(self, frame: ServerFrame) -> None:
        now = self._loop.time()
        if not self._started:
            self._started = True
            for phase in self._phases:
                phase.next_at = now + phase.offset
        for phase in self._phases:
            if not phase.members:
                continue
            if now >= phase.next_at - self._early:
                phase.cancel()
                phase.latest = None
                self._forward(phase, frame, now)
            else:
                phase.latest = frame
                if phase.timer is None:
                    phase.timer = self._loop.call_at(phase.next_at + self._early, self._flush, phase)

    def _flush(self, phase: _Phase) -> None:
        phase.timer = None
        frame, phase.latest = phase.latest, None
        if frame is not None:
            self._forward(phase, frame, self._loop.time())

    def _forward(self, phase: _Phase, frame: ServerFrame, now: float) -> None:
        # Within a quarter interval of the grid point: the next one. Later (the source paused): a new grid.
        phase.next_at = (phase.next_at if now <= phase.next_at + self._early else now) + self.interval
        for outbox in phase.members:
            outbox.put(frame)

    def cancel(self) -> None:
        for phase in self._phases:
            phase.cancel()


@dataclass
class _Channel:
    name: str
    epoch: str
    seq: int = 0
    subscribers: set[Outbox] = field(default_factory=set)
    groups: dict[float, _RateGroup] = field(default_factory=dict)
    history: deque[tuple[int, float, ServerFrame]] | None = None
    history_bytes: int = 0
    last_message_at: float = field(default_factory=time.monotonic)

    def drop_oldest(self) -> None:
        """Forget the oldest message of the history."""
        assert self.history
        frame = self.history.popleft()[2]
        self.history_bytes -= len(frame.payload) + len(frame.wire)

    @property
    def idle(self) -> bool:
        return not self.subscribers and not self.groups


class Hub(Lifecycle):
    """Subscriptions and fan-out for this instance; messages arrive through the broker from every instance."""

    def __init__(self, broker: Broker, limits: HubLimits | None = None) -> None:
        self.broker = broker
        self.limits = limits or HubLimits()
        self.epoch = secrets.token_hex(4)
        self.closing = False
        self._channels: dict[str, _Channel] = {}
        self._outboxes: set[Outbox] = set()
        self._caller_of: dict[Outbox, str] = {}
        self._sockets_of_caller: collections.Counter[str] = collections.Counter()
        self._generations = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._maintenance = Periodic("ws-maintenance", self.limits.keepalive_seconds / 2, self._maintain)
        self._listeners: dict[str, Callable[[bytes], None]] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        """Since start: messages_total (from the broker), deliveries_total (frames queued to sockets),
        slow_consumers_total (sockets cut for falling behind), subscriptions_total; and of the sockets' periodic
        re-checks: rechecks_total (completed), recheck_failures_total (a dependency did not answer),
        recheck_sign_outs_total (credential refused: socket closed), subscriptions_revoked_total."""

    async def start(self) -> None:
        """Connect the broker and start the keep-alive and history-trimming task."""
        self._loop = asyncio.get_running_loop()
        await self.broker.start(self.deliver, self._broker_gap)
        await self._maintenance.start()

    def publish(self, channel: str, data: Any) -> None:
        """Publish `data` on `channel` to every subscriber of every instance; never blocks, never raises."""
        try:
            if "\n" in channel:
                raise ValueError("channel names cannot hold a newline")
            self.broker.publish(channel, encode_data(data))
        except Exception as exc:
            log.error("publish_failed", channel=channel[:100], error=str(exc))

    def listen(self, channel: str, handler: Callable[[bytes], None]) -> None:
        """Hand every message on an internal channel (`internal:…`), from any instance, this one included, to
        `handler` (its JSON); such messages go to no socket."""
        if not channel.startswith(INTERNAL_PREFIX):
            raise ValueError(f"only {INTERNAL_PREFIX}… channels are listened to")
        self._listeners[channel] = handler

    def deliver(self, channel: str, data_json: bytes) -> None:
        """Number a message from the broker, keep it in history if the channel has one, and fan it out."""
        if channel.startswith(INTERNAL_PREFIX):
            handler = self._listeners.get(channel)
            if handler is not None:
                try:
                    handler(data_json)
                except Exception as exc:
                    log.error("internal_message_failed", channel=channel[:100], error=str(exc)[:200])
            return
        state = self._channels.get(channel)
        if state is None:
            if channel.partition(":")[0] not in HISTORY_KINDS:
                return  # nobody here listens and nothing is kept
            state = self._new_channel(channel)
        state.seq += 1
        frame = message_frame(channel, state.seq, data_json)
        if state.history is not None:
            state.last_message_at = time.monotonic()
            if len(state.history) == state.history.maxlen:
                state.drop_oldest()
            state.history.append((state.seq, state.last_message_at, frame))
            state.history_bytes += len(frame.payload) + len(frame.wire)
            while state.history_bytes > self.limits.history_bytes and len(state.history) > 1:
                state.drop_oldest()
        for outbox in state.subscribers:
            outbox.put(frame)
        for group in state.groups.values():
            group.offer(frame)
        self.counters["messages_total"] += 1
        self.counters["deliveries_total"] += len(state.subscribers)

    def attach(self, outbox: Outbox) -> None:
        """Register a socket's outbox (for keep-alive, shutdown, and dropping it when too slow)."""
        outbox.on_overflow = self._on_overflow
        self._outboxes.add(outbox)

    def admit(self, outbox: Outbox, caller: str) -> bool:
        """Count a signed-in socket against its caller (a user or an API key); False when that caller already
        holds `sockets_per_caller` sockets on this instance."""
        if outbox in self._caller_of:
            return True
        if self._sockets_of_caller[caller] >= self.limits.sockets_per_caller:
            return False
        self._caller_of[outbox] = caller
        self._sockets_of_caller[caller] += 1
        return True

    def detach(self, outbox: Outbox) -> None:
        """Forget a socket: unsubscribe it from everything, and stop counting it against its caller."""
        for channel in list(outbox.channels):
            self.unsubscribe(outbox, channel)
        self._outboxes.discard(outbox)
        caller = self._caller_of.pop(outbox, None)
        if caller is not None:
            self._sockets_of_caller[caller] -= 1
            if self._sockets_of_caller[caller] <= 0:
                del self._sockets_of_caller[caller]

    def subscribe(
        self,
        outbox: Outbox,
        channel: str,
        *,
        max_rate: float | None = None,
        last_seq: int | None = None,
        epoch: str | None = None,
        request_id: Any = None,
    ) -> None:
        """Subscribe and queue the answer (`subscribed`, then the missed messages or a `resync`) in order."""
        kind = channel.partition(":")[0]
        if channel not in outbox.channels and len(outbox.channels) >= self.limits.subscriptions_per_socket:
            raise TooManySubscriptions(
                f"at most {self.limits.subscriptions_per_socket} subscriptions per connection",
            )
        if max_rate is not None:
            if kind not in COALESCING_KINDS:
                raise InvalidMaxRate("maxRate applies to telemetry and video channels only")
            if not self.limits.min_rate <= max_rate <= self.limits.max_rate:  # NaN compares false
                raise InvalidMaxRate(
                    f"maxRate must be from {self.limits.min_rate:g} to {self.limits.max_rate:g} (messages per second)",
                )
        if channel in outbox.channels:
            self.unsubscribe(outbox, channel)
        state = self._channels.get(channel) or self._new_channel(channel)
        if max_rate is None:
            state.subscribers.add(outbox)
        else:
            group = state.groups.get(max_rate)
            if group is None:
                assert self._loop is not None, "Hub.start() was not awaited"
                group = state.groups[max_rate] = _RateGroup(max_rate, self._loop)
            group.add(outbox)
        outbox.channels[channel] = max_rate
        replay, resync = self._catch_up(state, last_seq, epoch)
        outbox.put_text(
            control_frame(
                "subscribed",
                channel=channel,
                epoch=state.epoch,
                seq=state.seq,
                maxRate=max_rate,
                recovered=None if last_seq is None else resync is None,
                id=request_id,
            )
        )
        for frame in replay:
            outbox.put(frame)
        if resync is not None:
            outbox.put_text(self._resync_frame(state, resync))

    def unsubscribe(self, outbox: Outbox, channel: str) -> bool:
        """Remove one subscription; False when there was none."""
        if channel not in outbox.channels:
            return False
        max_rate = outbox.channels.pop(channel)
        state = self._channels.get(channel)
        if state is None:
            return True
        if max_rate is None:
            state.subscribers.discard(outbox)
        else:
            group = state.groups.get(max_rate)
            if group is not None:
                group.discard(outbox)
                if not group:
                    group.cancel()
                    del state.groups[max_rate]
        if state.idle and state.history is None:
            del self._channels[channel]
        return True

    async def close(self) -> None:
        """Stop accepting, tell every client 1001 after what it was sent, and stop the broker."""
        await self.close_sockets()
        await self._maintenance.close()
        for state in self._channels.values():
            for group in state.groups.values():
                group.cancel()
        await self.broker.close()

    async def close_sockets(self) -> None:
        """Refuse new sockets; close the open ones with 1001 after flushing what they were sent (bounded)."""
        self.closing = True
        for outbox in list(self._outboxes):
            outbox.close_soon(CLOSE_GOING_AWAY, "server shutting down", flush=True)
        waiting = [asyncio.create_task(o.done.wait()) for o in self._outboxes]
        if waiting:
            _, pending = await asyncio.wait(waiting, timeout=self.limits.shutdown_flush_seconds)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("ws_shutdown_flush_timeout", unflushed=len(pending))

    def subscriber_count(self, channel: str) -> int:
        """How many sockets of this instance listen to `channel` (at full rate or coalesced)."""
        state = self._channels.get(channel)
        if state is None:
            return 0
        return len(state.subscribers) + sum(len(g) for g in state.groups.values())

    def stats(self) -> dict[str, int | str]:
        """Counts for health checks, logs and /metrics."""
        return {
            "broker": self.broker.name,
            "connections": len(self._outboxes),
            "channels": len(self._channels),
            "subscriptions": sum(len(o.channels) for o in self._outboxes),
            "direct_sockets": sum(1 for o in self._outboxes if o.direct),
            "queued_frames": sum(o.queued for o in self._outboxes),
            "history_bytes": sum(state.history_bytes for state in self._channels.values()),
            **self.counters,
        }

    def _new_channel(self, channel: str) -> _Channel:
        state = _Channel(channel, f"{self.epoch}-{next(self._generations)}")
        if channel.partition(":")[0] in HISTORY_KINDS:
            state.history = deque(maxlen=self.limits.history_messages)
        self._channels[channel] = state
        return state

    def _catch_up(
        self, state: _Channel, last_seq: int | None, epoch: str | None
    ) -> tuple[list[ServerFrame], tuple[str, str] | None]:
        """The frames after `last_seq`, or why they cannot be given (reason code, sentence)."""
        if last_seq is None:
            return [], None
        if state.history is None:
            return [], ("no_history", "this channel keeps no history; read the current state over HTTP")
        if epoch != state.epoch:
            return [], (
                "epoch_changed",
                "the stream restarted (another server, or a restart); fetch the state",
            )
        if last_seq > state.seq:
            return [], ("unknown_position", "lastSeq is ahead of this channel; fetch the state")
        oldest = state.history[0][0] if state.history else state.seq + 1
        if last_seq + 1 < oldest:
            return [], ("history_gap", "messages after lastSeq are no longer held; fetch the state")
        return [frame for seq, _, frame in state.history if seq > last_seq], None

    @staticmethod
    def _resync_frame(state: _Channel, reason: tuple[str, str]) -> str:
        return control_frame(
            "resync",
            channel=state.name,
            reason=reason[0],
            message=reason[1],
            epoch=state.epoch,
            seq=state.seq,
        )

    def _on_overflow(self, outbox: Outbox) -> None:
        self.counters["slow_consumers_total"] += 1
        # Called from inside a fan-out loop: detach once that loop is over, not during it.
        assert self._loop is not None
        self._loop.call_soon(self.detach, outbox)

    def _broker_gap(self) -> None:
        """Messages may have been lost between instances: history channels start a new epoch and say so."""
        for state in self._channels.values():
            if state.history is None:
                continue
            state.epoch = f"{self.epoch}-{next(self._generations)}"
            state.history.clear()
            state.history_bytes = 0
            frame = ServerFrame.from_text(
                self._resync_frame(state, ("broker_gap", "messages may have been lost; fetch the state"))
            )
            for outbox in state.subscribers:
                outbox.put(frame)

    async def _maintain(self) -> None:
        """Keep-alives to sockets sent nothing for a while; history and idle channels past their time dropped."""
        now = time.monotonic()
        keepalive = ServerFrame.from_text(KEEPALIVE_FRAME)
        for outbox in self._outboxes:
            if now - outbox.last_put >= self.limits.keepalive_seconds:
                outbox.put(keepalive)
        horizon = now - self.limits.history_seconds
        for name, state in list(self._channels.items()):
            while state.history and state.history[0][1] < horizon:
                state.drop_oldest()
            if state.idle and state.last_message_at < horizon:
                del self._channels[name]
