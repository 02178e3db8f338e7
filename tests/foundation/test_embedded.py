"""Zero configuration: the real `pitbox serve` with embedded PostgreSQL, stopped and started again."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JWT_SECRET")}
    env.update({"DATA_DIR": str(data_dir), "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warning"})
    return subprocess.Popen(
        [sys.executable, "-m", "pitbox", "serve"],
        env=env,
        cwd=data_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
        try:
            response = httpx.get(f"{url}/health", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become healthy")


def _cli(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "LOG_LEVEL")}  # info: logs too
    env.update({"DATA_DIR": str(data_dir)})
    result = subprocess.run(
        [sys.executable, "-m", "pitbox", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_embedded_database_keeps_data_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(data_dir, port)
    try:
        health = _wait_healthy(url, proc).json()
        assert health["components"]["database"] == {"status": "ok", "embedded": True}
        # The operator's CLI joins the same embedded server while it runs; its stdout is the user's JSON alone.
        created = _cli(
            data_dir,
            "users",
            "create",
            "boss@pitbox.test",
            "--role",
            "admin",
            "--password-stdin",
            stdin="correct horse battery\n",
        )
        assert json.loads(created)["email"] == "boss@pitbox.test"
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn shuts down cleanly, then exits as interrupted (130)
        assert proc.wait(timeout=60) in (0, 130)
    assert (data_dir / "jwt_secret").stat().st_mode & 0o777 == 0o600
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "embedded PostgreSQL still running"

    proc = _start(data_dir, port)
    try:
        _wait_healthy(url, proc)
        login = httpx.post(
            f"{url}/api/auth/login", json={"email": "boss@pitbox.test", "password": "correct horse battery"}
        )
        assert login.status_code == 200, login.text
        assert login.json()["tokenType"] == "bearer"
    finally:
        proc.terminate()  # SIGTERM, as a container runtime stops it
        assert proc.wait(timeout=60) in (0, -15)
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "embedded PostgreSQL still running"


def test_cli_prints_only_its_result_on_a_fresh_data_dir(tmp_path: Path) -> None:
    # As README shows it: the command starts the embedded database itself, logs on stderr, JSON on stdout.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JWT_SECRET", "LOG_LEVEL")}
    env["DATA_DIR"] = str(tmp_path / "data")
    pitbox = shlex.join([sys.executable, "-m", "pitbox"])
    reader = shlex.join([sys.executable, "-c", "import json,sys; print(json.load(sys.stdin)['driverId'])"])
    pipeline = (
        f"set -o pipefail; {pitbox} users create driver@pitbox.test --role driver --password-stdin "
        f"<<< 'pit-lane-speed-60' 2> {shlex.quote(str(tmp_path / 'log'))} | {reader}"
    )
    result = subprocess.run(
        ["bash", "-c", pipeline], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr + (tmp_path / "log").read_text()
    assert len(result.stdout.strip()) == 36  # the driver's id
    logged = [json.loads(line)["event"] for line in (tmp_path / "log").read_text().splitlines()]
    assert "embedded_postgres_started" in logged and "migration_applied" in logged
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists(), (
        "embedded PostgreSQL still running"
    )
