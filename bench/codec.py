"""Benchmark of the telemetry chunk codec on the real iRacing recordings in <repo>/../shared/data.

Prints bytes per sample (40 common channels and every channel) against zstd of plain float64 columns and
against JSON rows, then encode, decode and rows-to-columns throughput. `--quick` uses fewer repeats.

    PYTHONPATH=src python bench/codec.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson
import zstandard

from pitbox.telemetry.codec import ChunkCodec, rows_to_columns

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "iracing_ibt" / "robrobertsce"
STAMPS = ("14-46-23", "14-48-39", "14-50-46")
CHUNK = 600
COMMON_40 = {
    "SessionTime": "t", "Lap": "lap", "LapDistPct": "lapDistPct", "LapDist": "lapDist", "Speed": "speed",
    "RPM": "rpm", "Gear": "gear", "Throttle": "throttle", "Brake": "brake", "SteeringWheelAngle": "steering",
    "Lat": "lat", "Lon": "lon", "Alt": "z", "Clutch": "clutch", "LongAccel": "longAccel",
    "LatAccel": "latAccel", "VertAccel": "vertAccel", "Yaw": "yaw", "Pitch": "pitch", "Roll": "roll",
    "YawRate": "yawRate", "PitchRate": "pitchRate", "RollRate": "rollRate", "VelocityX": "velocityX",
    "VelocityY": "velocityY", "VelocityZ": "velocityZ", "FuelLevel": "fuelLevel", "WaterTemp": "waterTemp",
    "OilTemp": "oilTemp", "OilPress": "oilPress", "ManifoldPress": "manifoldPress", "LFspeed": "wheelSpeedFL",
    "RFspeed": "wheelSpeedFR", "LRspeed": "wheelSpeedRL", "RRspeed": "wheelSpeedRR", "LFshockDefl": "shockFL",
    "RFshockDefl": "shockFR", "LRshockDefl": "shockRL", "RRshockDefl": "shockRR", "OnPitRoad": "onPitRoad",
}  # fmt: skip

Columns = dict[str, npt.NDArray[np.float64]]


def read_recording(path: Path, *, all_channels: bool) -> Columns:
    """Scalar channels of an .ibt file: the 40 common ones under canonical names (speed in km/h), or all."""
    import irsdk

    ibt = irsdk.IBT()
    ibt.open(str(path))
    try:
        names = ibt.var_headers_names if all_channels else list(COMMON_40)
        columns: Columns = {}
        for name in names:
            values = np.asarray(ibt.get_all(name), dtype=np.float64)
            if values.ndim == 1:
                key = name if all_channels else COMMON_40[name]
                columns[key] = values * 3.6 if key == "speed" else values
        if all_channels:
            columns["t"] = columns.pop("SessionTime")
        return columns
    finally:
        ibt.close()


def chunks_of(columns: Columns) -> list[Columns]:
    """The recording cut into ingest-sized chunks."""
    length = len(columns["t"])
    return [{k: v[s : s + CHUNK] for k, v in columns.items()} for s in range(0, length, CHUNK)]


def best_of(repeats: int, action: Callable[[], object]) -> float:
    """Fastest of `repeats` runs, in seconds (the machine is shared: the minimum is the honest figure)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def as_rows(chunk: Columns) -> list[dict[str, float]]:
    """Row-wise samples as a driver app sends them, through a real JSON round trip."""
    names = list(chunk)
    matrix = np.stack([chunk[name] for name in names], axis=1).tolist()
    rows = [dict(zip(names, row, strict=True)) for row in matrix]
    decoded: list[dict[str, float]] = orjson.loads(orjson.dumps(rows))
    return decoded


def size_table(recordings: list[Columns], label: str) -> list[tuple[str, str, float]]:
    """Bytes per sample of each way to store the recordings."""
    samples = sum(len(columns["t"]) for columns in recordings)
    chunks = [chunk for columns in recordings for chunk in chunks_of(columns)]
    zstd = zstandard.ZstdCompressor(level=3)
    results: list[tuple[str, str, float]] = []
    plain = sum(len(zstd.compress(np.stack(list(chunk.values())).tobytes())) for chunk in chunks)
    json_rows = [orjson.dumps(as_rows(chunk)) for chunk in chunks]
    results.append((label, "orjson rows (what arrives)", sum(map(len, json_rows)) / samples))
    results.append((label, "zstd-3 of orjson rows", sum(len(zstd.compress(r)) for r in json_rows) / samples))
    results.append((label, "zstd-3 of float64 columns (baseline)", plain / samples))
    for bits, note in ((23, "lossless float32"), (16, "16-bit mantissa")):
        for level in (1, 3):
            codec = ChunkCodec(level=level, mantissa_bits=bits)
            stored = sum(len(codec.encode(chunk)[0]) for chunk in chunks)
            results.append((label, f"ChunkCodec level {level}, {note}", stored / samples))
    return results


def main() -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, one recording for timings")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"recordings not found at {DATA.resolve()}: nothing to measure", file=sys.stderr)
        return 1
    repeats = 5 if args.quick else 20
    paths = [DATA / f"skmodified_langley 2015-05-28 {stamp}.ibt" for stamp in STAMPS]
    common = [read_recording(path, all_channels=False) for path in paths]
    every = [read_recording(path, all_channels=True) for path in paths]

    print(f"{'channels':<10} {'storage':<42} {'B/sample':>9} {'ratio':>7}")
    for label, recordings in (("40", common), (f"all {len(every[0])}", every)):
        sizes = size_table(recordings, label)
        baseline = next(size for _, name, size in sizes if "baseline" in name)
        for channel_label, name, size in sizes:
            print(f"{channel_label:<10} {name:<42} {size:>9.2f} {baseline / size:>6.2f}x")

    chunk = chunks_of(common[0])[2]
    codec = ChunkCodec()
    payload, names = codec.encode(chunk)
    rows = as_rows(chunk)
    rows_json = orjson.dumps(rows)
    hour = [codec.encode(c) for c in (chunks_of(common[0]) * 60)[:360]]
    hour_samples = sum(len(codec.decode(p, n)["t"]) for p, n in hour)
    zstd = zstandard.ZstdCompressor(level=3)
    plain = [zstd.compress(np.stack(list(c.values())).tobytes()) for c in chunks_of(common[0])]
    unzstd = zstandard.ZstdDecompressor()
    timings = [
        ("encode 600x40 chunk (ChunkCodec level 3)", best_of(repeats * 20, lambda: codec.encode(chunk))),
        ("encode 600x40 chunk (level 1)", best_of(repeats * 20, lambda: ChunkCodec(level=1).encode(chunk))),
        ("decode 600x40 chunk", best_of(repeats * 20, lambda: codec.decode(payload, names))),
        ("decode one hour: 360 chunks", best_of(repeats, lambda: [codec.decode(p, n) for p, n in hour])),
        (
            "baseline: unzstd 360 float64 chunks",
            best_of(repeats, lambda: [unzstd.decompress(p) for p in plain * 60]),
        ),
        ("rows -> columns, 600 rows x 40", best_of(repeats * 20, lambda: rows_to_columns(rows))),
        ("baseline: orjson.loads of the same rows", best_of(repeats * 20, lambda: orjson.loads(rows_json))),
    ]
    print(f"\n{'operation':<44} {'ms':>9} {'samples/s':>12}")
    for name, seconds in timings:
        samples = hour_samples if "hour" in name or "360" in name else CHUNK
        print(f"{name:<44} {seconds * 1e3:>9.3f} {samples / seconds:>12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
