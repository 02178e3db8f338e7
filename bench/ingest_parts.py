"""The steps of ingesting one batch, timed alone on one core: where the CPU of `bench/ingest.py` goes.

Per 600-sample × 40-channel row-wise body (the bodies of bench/ingest.py): orjson decoding the body (the
baseline of the ingest target), the general path's checks that turn those rows into numpy columns
(`parse_batch`), the usual path that takes this body from bytes to checked columns (`parse_body`: typed
decoding, telemetry/uniform_rows.py), encoding the chunk, the live message's JSON, and the pickle round trip
of a prepared batch between the server and an ingest worker. Median of 7 passes over the bodies (3 with
`--quick`).

    PYTHONPATH=src python bench/ingest_parts.py [--quick]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from codec import DATA
from ingest import bodies_for, telemetry_stream

from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.ingest import parse_batch, parse_body
from pitbox.telemetry.prepare import PreparedBatch, prepare_body
from pitbox.telemetry.uniform_rows import UniformRows


def per_item_ms(items: list[Any], step: Callable[[Any], object], repeats: int) -> float:
    """Median over `repeats` passes of the milliseconds `step` takes per item."""
    passes = []
    for _ in range(repeats):
        started = time.perf_counter()
        for item in items:
            step(item)
        passes.append(1000 * (time.perf_counter() - started) / len(items))
    return statistics.median(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer bodies and passes")
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"recordings not found in {DATA}: ../shared/data must be beside the checkout")
    samples, repeats = (12_000, 3) if args.quick else (60_000, 7)
    bodies = bodies_for(telemetry_stream(samples), 600, str(uuid.uuid4()), str(uuid.uuid4()))
    codec = ChunkCodec(mantissa_bits=16)
    messages = [orjson.loads(body) for body in bodies]
    batches = [parse_batch(message) for message in messages]
    uniform_rows = UniformRows()
    prepared: list[PreparedBatch] = [prepare_body(body, codec, uniform_rows) for body in bodies]
    answers = [pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL) for item in prepared]

    rows = [
        ("orjson.loads of the body (the target's baseline)", per_item_ms(bodies, orjson.loads, repeats)),
        (
            "general path: its rows -> checked columns (parse_batch)",
            per_item_ms(messages, parse_batch, repeats),
        ),
        (
            "usual path: body -> checked columns (parse_body)",
            per_item_ms(bodies, lambda b: parse_body(b, uniform_rows), repeats),
        ),
        ("encode the chunk (ChunkCodec)", per_item_ms(batches, lambda b: codec.encode(b.columns), repeats)),
        (
            "live message JSON of the columns",
            per_item_ms(
                batches, lambda b: orjson.dumps(b.columns, option=orjson.OPT_SERIALIZE_NUMPY), repeats
            ),
        ),
        (
            "pickle + unpickle of the worker's answer",
            per_item_ms(answers, pickle.loads, repeats)
            + per_item_ms(prepared, lambda p: pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL), repeats),
        ),
        (
            "the worker's whole step (prepare_body)",
            per_item_ms(bodies, lambda b: prepare_body(b, codec, uniform_rows), repeats),
        ),
    ]
    print(
        f"{len(bodies)} bodies of 600 samples x 40 channels ({len(bodies[0]):,} bytes each), median of {repeats}"
    )
    print(f"\n{'step, per batch on one core':<58} {'ms':>6}")
    for name, ms in rows:
        print(f"{name:<58} {ms:>6.2f}")


if __name__ == "__main__":
    main()
