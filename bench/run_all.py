"""Run every benchmark in bench/ one after another (the `make bench` verb); each prints its own table.

Usage: python bench/run_all.py [--quick] [name ...]   (names: startup codec ingest ingest_parts read fanout
video voice coaching cues dashboard soak; default all)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCHES = [
    "startup",
    "codec",
    "ingest",
    "ingest_parts",
    "read",
    "fanout",
    "video",
    "voice",
    "coaching",
    "cues",
    "dashboard",
    "soak",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    parser.add_argument("names", nargs="*", help=f"some of: {' '.join(BENCHES)}")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    failed = []
    for name in args.names or BENCHES:
        script = Path(__file__).with_name(f"{name}.py")
        print(f"\n=== bench/{name}.py", flush=True)
        command = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
