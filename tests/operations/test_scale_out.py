"""Scale-out: two real `pitbox serve` processes on one database and one Redis (or NATS); a dashboard on
instance A hears telemetry that a relay agent sent to instance B."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pitbox.client import PitboxClient
from tests.conftest import TEST_JWT_SECRET, RunningServer, Team, free_port, nats_url, redis_url


def _start(database_url: str, data_dir: Path, broker: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "DATA_DIR": str(data_dir),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "warning",
        **broker,
    }
    env.pop("REDIS_URL" if "NATS_URL" in broker else "NATS_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "pitbox", "serve"], env=env, stdout=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}"


async def _healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            assert proc.poll() is None, "instance exited"
            try:
                if (await http.get(f"{url}/health", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became healthy")


@pytest.fixture(params=["redis", "nats"])
def broker(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The broker the two instances share: REDIS_URL / NATS_URL, or the default ports."""
    yield {"REDIS_URL": redis_url()} if request.param == "redis" else {"NATS_URL": nats_url()}


async def test_dashboard_on_one_instance_hears_telemetry_sent_to_another(
    server: RunningServer, team: Team, tmp_path: Path, broker: dict[str, str]
) -> None:
    database_url = str(server.settings.database_url)
    a_proc, a_url = _start(database_url, tmp_path / "a", broker)
    b_proc, b_url = _start(database_url, tmp_path / "b", broker)
    try:
        await asyncio.gather(_healthy(a_url, a_proc), _healthy(b_url, b_proc))
        driver = team.driver.driver_id
        assert driver is not None
        async with (
            PitboxClient(a_url, token=team.engineer.token) as dashboard,
            PitboxClient(b_url, token=team.driver.token) as relay,
            dashboard.subscribe([f"telemetry:{driver}"]) as live,
        ):
            session = await relay.create_session(driver, "Two instances")
            samples = [{"t": i / 60, "speed": 100.0 + i, "lapDistPct": i / 600} for i in range(60)]
            ack = await relay.send_batch(driver, session["id"], samples, batch_id="b-1")
            heard = [await asyncio.wait_for(live.receive(), timeout=30) for _ in range(2)]
        assert [m["data"]["type"] for m in heard] == ["session_started", "telemetry"], heard
        message = heard[1]
        assert message["channel"] == f"telemetry:{driver}"
        assert ack["samples"] == 60, ack
        assert message["data"]["columns"]["speed"][:2] == [100.0, 101.0]
    finally:
        for proc in (a_proc, b_proc):
            proc.terminate()
        for proc in (a_proc, b_proc):
            proc.wait(timeout=60)
