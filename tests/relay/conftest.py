"""Relay tests: a real relay (in this process, or as a `pitbox relay` subprocess) fed real captures over
loopback UDP, sending to the real test server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pitbox.client import PitboxClient
from pitbox.relay.agent import Relay, RelayOptions
from pitbox.relay.capture import Datagram, read_capture
from pitbox.relay.replayer import play_capture
from pitbox.relay.status import StatusLine
from tests.conftest import RunningServer, Team, World, shared_data

RELAY_SCOPES = ["telemetry:write", "sessions:write", "sessions:read"]


async def eventually(
    condition: Callable[[], Awaitable[bool] | bool], *, within: float = 60.0, what: str = ""
) -> None:
    """Wait until `condition` holds (polling), or fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.05)


@dataclass
class Driver:
    """A driver of a fresh team with a relay key, and a client reading the server as the team's engineer."""

    id: str
    key: str
    reader: PitboxClient

    async def sessions(self) -> list[dict[str, Any]]:
        """The driver's sessions, oldest first."""
        return list(reversed(await self.reader.sessions(self.id)))

    async def stored(self, session_id: str, channels: str = "t,speed") -> dict[str, list[float]]:
        """The stored columns of a session."""
        answer = await self.reader.telemetry(session_id, channels=channels, format="json", limit=100000)
        return dict(answer["columns"])


@pytest.fixture
async def driver(server: RunningServer, world: World, team: Team) -> AsyncIterator[Driver]:
    """A driver with an API key for the relay."""
    assert team.driver.driver_id is not None
    key = await world.api_key(driver_id=team.driver.driver_id, scopes=RELAY_SCOPES)
    async with PitboxClient(server.url, token=team.engineer.token) as reader:
        yield Driver(team.driver.driver_id, key, reader)


def capture(relative: str) -> list[Datagram]:
    """The datagrams of a capture in ../shared/data (the test is skipped without that folder)."""
    return read_capture(shared_data(relative))


@contextlib.asynccontextmanager
async def running_relay(
    server: RunningServer, who: Driver, source: str, spool: Path, **options: Any
) -> AsyncIterator[Relay]:
    """A relay in this event loop, listening on a free loopback port (or connecting, for ac)."""
    if "connect" not in options:
        options.setdefault("listen", ("127.0.0.1", 0))
    relay = Relay(
        RelayOptions(source=source, server=server.url, key=who.key, spool_dir=spool, **options),
        status=StatusLine(quiet=True),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await eventually(lambda: relay.ready.is_set() or task.done(), what="relay ready")
    if task.done():
        task.result()
    try:
        yield relay
    finally:
        stop.set()
        await task


async def feed(relay: Relay, datagrams: Sequence[Datagram], *, speed: float | None = None) -> int:
    """Send datagrams to the relay; at most 200 ahead of what it has read (UDP has no flow control)."""
    assert relay.bound is not None
    return await play_capture(
        datagrams,
        source=relay.options.source,
        to=relay.bound,
        speed=speed,
        may_send=lambda n: relay.counts.datagrams >= n - 200,
    )


async def settled(relay: Relay, datagrams: int) -> None:
    """The relay read every datagram, and the server acknowledged every spooled sample."""
    await eventually(lambda: relay.counts.datagrams >= datagrams, what="datagrams read")
    relay.spool.flush()
    await eventually(lambda: relay.spool.backlog() == 0 or _only_pending(relay), what="spool drained")


def _only_pending(relay: Relay) -> bool:
    relay.spool.flush()
    active = [s.id for s in relay.spool.sessions(("active", "ended"))]
    return all(
        relay.spool._db.execute("SELECT 1 FROM samples WHERE session = ?", (s,)).fetchone() is None
        for s in active
    )
