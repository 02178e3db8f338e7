"""A real `pitbox serve` process on an embedded PostgreSQL in a work folder, for the benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pgserver

from pitbox.app import build_services
from pitbox.config import Settings

JWT_SECRET = "bench-secret-0123456789-abcdefghij-klmnop"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalServer:
    """The running server: its URL, database, settings (for minting tokens) and process."""

    base: str
    database_url: str
    settings: Settings
    process: subprocess.Popen[bytes]


@contextlib.asynccontextmanager
async def local_server(workdir: Path, **env: str) -> AsyncIterator[LocalServer]:
    """Start PostgreSQL and `pitbox serve` (migrations applied first); `env` adds settings such as
    LIVE_COACHING="false". The server's own origin is allowed for browser sockets."""
    database = pgserver.get_server(workdir / "pg", cleanup_mode="stop")  # type: ignore[attr-defined]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        _env_file=None,
        database_url=database.get_uri(),
        data_dir=workdir / "data",
        jwt_secret=JWT_SECRET,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        cors_origins=[base],
    )
    async with build_services(settings):
        pass  # applies the migrations before the server starts
    process_env = {
        **os.environ,
        "DATABASE_URL": database.get_uri(),
        "DATA_DIR": str(workdir / "data"),
        "JWT_SECRET": JWT_SECRET,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "warning",
        "CORS_ORIGINS": base,
        **env,
    }
    proc = subprocess.Popen([sys.executable, "-m", "pitbox", "serve"], env=process_env)  # noqa: ASYNC220 - once
    try:
        async with httpx.AsyncClient() as client:
            while True:
                if proc.poll() is not None:
                    raise SystemExit("server exited during start-up")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{base}/health", timeout=1)).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield LocalServer(base, database.get_uri(), settings, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        database.cleanup()
