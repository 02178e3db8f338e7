"""Faults between the relay and the server lose nothing and duplicate nothing: the server refusing connections,
the server stopped mid-stream and started again, the relay SIGKILLed and started again on its spool.
Expected values come from the capture's own bytes (Forza's Speed field, m/s, at byte 244)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import orjson

from pitbox.relay.replayer import play_capture
from tests.conftest import RunningServer, free_port, make_settings, run_server
from tests.relay.conftest import Driver, capture, eventually, feed, running_relay, settled

FORZA = "forza_motorsport/hakone_skyline_gtr_dash.raw"


def _speeds_kmh(payloads: list[bytes]) -> np.ndarray:
    return np.array([struct.unpack_from("<f", p, 244)[0] * 3.6 for p in payloads])


async def _assert_stored_once_in_order(driver: Driver, payloads: list[bytes]) -> None:
    sessions = await driver.sessions()
    assert len(sessions) == 1, [s["name"] for s in sessions]
    stored = await driver.stored(sessions[0]["id"])
    assert sessions[0]["sampleCount"] == len(payloads)
    # Same speeds in the same order: nothing lost, nothing twice (16-bit mantissas on disk: rtol 2e-5).
    np.testing.assert_allclose(np.array(stored["speed"]), _speeds_kmh(payloads), rtol=2e-5)


async def test_server_refusing_then_stopped_mid_stream_loses_and_duplicates_nothing(
    server: RunningServer, driver: Driver, database_url: str, tmp_path: Path
) -> None:
    datagrams = capture(FORZA)
    payloads = [d.payload for d in datagrams]
    settings = make_settings(database_url, tmp_path / "data", port=free_port())
    url = f"http://127.0.0.1:{settings.port}"
    third = len(datagrams) // 3
    async with running_relay(
        RunningServer(url, "", server.services, settings), driver, "forza", tmp_path / "spool"
    ) as relay:
        # 1. Nothing listens on the port yet: connections are refused, the relay spools.
        await feed(relay, datagrams[:third])
        await eventually(lambda: relay.sender.stats.last_error is not None, what="a refused connection")
        async with run_server(settings):
            await feed(relay, datagrams[third : 2 * third])
            await eventually(lambda: relay.sender.stats.acked > 0, what="first acks")
        # 2. The server stopped mid-stream; the rest comes while it is down, then it starts again.
        await feed(relay, datagrams[2 * third :])
        await eventually(lambda: relay.counts.datagrams == len(datagrams), what="all read")
        async with run_server(settings):
            await settled(relay, len(datagrams))
    await _assert_stored_once_in_order(driver, payloads)


def _relay_process(url: str, key: str, spool: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pitbox",
            "relay",
            "forza",
            "--server",
            url,
            "--key",
            key,
            "--spool",
            str(spool),
            "--listen",
            f"127.0.0.1:{port}",
            "--log-json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOG_LEVEL": "warning"},
    )


class _Status:
    """The latest `status` event a relay subprocess wrote on stderr."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.latest: dict[str, object] = {}
        self.events: list[str] = []
        assert process.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with contextlib.suppress(orjson.JSONDecodeError):
                event = orjson.loads(line)
                self.events.append(str(event.get("event")))
                if event.get("event") == "status":
                    self.latest = event


async def test_relay_killed_with_sigkill_resumes_from_its_spool(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    datagrams = capture(FORZA)
    payloads = [d.payload for d in datagrams]
    half = len(datagrams) // 2
    port = free_port()
    spool = tmp_path / "spool"

    async def run_until_read(count: int, part: list) -> tuple[subprocess.Popen[str], _Status]:
        process = _relay_process(server.url, driver.key, spool, port)
        status = _Status(process)
        await eventually(lambda: "status" in status.events, what="relay up")
        await play_capture(part, source="forza", to=("127.0.0.1", port), speed=8.0)
        await eventually(lambda: status.latest.get("packets") == count, what=f"{count} datagrams read")
        await eventually(lambda: status.latest.get("spooled") == count, what=f"{count} samples spooled")
        return process, status

    first, status = await run_until_read(half, datagrams[:half])
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    second, status = await run_until_read(len(datagrams) - half, datagrams[half:])
    try:
        await eventually(
            lambda: status.latest.get("backlog") == 0 and status.latest.get("acked") > 0, what="drained"
        )
    finally:
        second.send_signal(signal.SIGINT)
        await asyncio.to_thread(second.wait, 60)
    assert "session_resumed" in status.events
    await _assert_stored_once_in_order(driver, payloads)
