"""Zero configuration: the real `pitbox serve` with embedded PostgreSQL, stopped and started again."""

from __future__ import annotations

import os
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
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"DATA_DIR": str(data_dir), "LOG_LEVEL": "warning"})
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
        # The operator's CLI joins the same embedded server while it runs.
        _cli(
            data_dir,
            "users",
            "create",
            "boss@pitbox.test",
            "--role",
            "admin",
            "--password-stdin",
            stdin="correct horse battery\n",
        )
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
