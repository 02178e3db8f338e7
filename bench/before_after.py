"""Run benchmarks on an earlier commit and on this checkout in turn, so that both see the same machine.

Usage: python bench/before_after.py REF [--rounds N] name ...   (names as in run_all.py; each runs --quick)

A change that should not move the figures (a restructuring) is compared this way rather than against numbers
recorded on another day: the load of a shared 2-core machine moves them more than such a change could. The
earlier code is `git archive REF`, unpacked in a temporary directory beside a link to ../shared (where the
benchmarks find the recordings) and run with its own src/ first on PYTHONPATH and this checkout's interpreter.
Each run's output goes to stdout under a `=== name before|after round N` line; progress and the machine's load
to stderr.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from run_all import BENCHES

HERE = Path(__file__).resolve().parents[1]


def unpack(ref: str, into: Path) -> Path:
    """The tree of `ref` under `into`, with ../shared beside it as the benchmarks expect."""
    archive = subprocess.run(["git", "archive", ref], cwd=HERE, check=True, capture_output=True).stdout
    tree = into / "before"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    (into / "shared").symlink_to((HERE.parent / "shared").resolve())
    return tree


def run(tree: Path, name: str) -> str:
    """One benchmark's stdout, run from `tree` with that tree's code."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    done = subprocess.run(
        [sys.executable, str(tree / "bench" / f"{name}.py"), "--quick"],
        cwd=tree,
        env=env,
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    return done.stdout + ("" if done.returncode == 0 else f"(exit status {done.returncode})\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ref", help="the earlier commit (anything git archive takes)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="before/after pairs of each benchmark (default 2)"
    )
    parser.add_argument("names", nargs="+", help=f"some of: {' '.join(BENCHES)}")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="pitbox-before-") as scratch:
        trees = {"before": unpack(args.ref, Path(scratch)), "after": HERE}
        for round_number in range(1, args.rounds + 1):
            for name in args.names:
                for side, tree in trees.items():
                    load = os.getloadavg()[0]
                    print(
                        f"{name} {side} round {round_number} (load {load:.2f})", file=sys.stderr, flush=True
                    )
                    output = run(tree, name)
                    print(f"=== {name} {side} round {round_number}\n{output}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
