"""Start-up time of `pitbox serve` to a healthy /health with the embedded PostgreSQL: first run and second run.

The first run creates the database cluster (initdb) and applies the migrations; the second finds both.
Usage: python bench/startup.py [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_to_healthy(data_dir: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JWT_SECRET")}
    env.update({"DATA_DIR": str(data_dir), "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warning"})
    started = time.perf_counter()
    proc = subprocess.Popen(  # its logs (stderr) are not this bench's output
        [sys.executable, "-m", "pitbox", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit("server exited during start-up")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one fresh data dir instead of three")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    first, second = [], []
    for _ in range(runs):
        root = Path(tempfile.mkdtemp(prefix="pitbox-startup-"))
        try:
            first.append(time_to_healthy(root / "data"))
            second.append(time_to_healthy(root / "data"))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print("| start-up to healthy /health (embedded PostgreSQL) | median s | runs |")
    print("|---|---|---|")
    print(f"| first run (initdb + migrations) | {statistics.median(first):.2f} | {runs} |")
    print(f"| second run (existing data dir) | {statistics.median(second):.2f} | {runs} |")
    print(f"ratio second/first: {statistics.median(second) / statistics.median(first):.2f}")


if __name__ == "__main__":
    main()
