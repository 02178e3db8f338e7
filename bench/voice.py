"""Voice benchmark: local Piper synthesis of a 15-word coaching line (cold, warm) and cache-hit latency.

Runs against an embedded PostgreSQL (pgserver) in a temp dir. `--quick` does fewer repetitions.
Usage: PYTHONPATH=src python bench/voice.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
from pgserver.postgres_server import get_server  # the package re-exports it implicitly (no __all__)

from pitbox.voice import VoiceService
from pitbox.voice.piper_voice import DEFAULT_PIPER_VOICE, PiperEngine, wav_duration_s

MIGRATION = (
    Path(__file__).resolve().parents[1] / "src" / "pitbox" / "db" / "migrations" / "0001_initial_schema.sql"
)
LINE = "Brake a little later into turn three and carry more speed onto the back straight."
WARM_LINES = [
    LINE,
    "You lost two tenths in sector two, try a smoother exit from the hairpin.",
    "Fuel is good for five more laps, keep pushing and watch your rear tyres.",
    "Gap to the car behind is one second, defend the inside into turn one.",
]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"


async def run(repeats: int, hits: int) -> None:
    assert len(LINE.split()) == 15
    rows: list[tuple[str, float, str]] = []

    engine = PiperEngine()
    started = time.perf_counter()
    audio = await engine.synthesize_wav(LINE, DEFAULT_PIPER_VOICE)
    cold = time.perf_counter() - started
    audio_s = wav_duration_s(audio)
    rows.append(("piper cold (model load + synth)", cold, f"audio {audio_s:.2f} s"))

    warm: list[float] = []
    for i in range(repeats):
        text = WARM_LINES[i % len(WARM_LINES)]
        started = time.perf_counter()
        await engine.synthesize_wav(text, DEFAULT_PIPER_VOICE)
        warm.append(time.perf_counter() - started)
    warm_median = statistics.median(warm)
    rows.append(("piper warm synth (median)", warm_median, f"n={repeats}, RTF {warm_median / audio_s:.3f}"))

    with tempfile.TemporaryDirectory(prefix="pitbox-bench-voice-") as tmp:
        server = get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            pool = await asyncpg.create_pool(server.get_uri(), min_size=1, max_size=4)
            await pool.execute(MIGRATION.read_text(encoding="utf-8"))
            service = VoiceService(pool, Path(tmp) / "data", piper=engine)

            started = time.perf_counter()
            first = await service.synthesize(LINE + " Now.")
            miss = time.perf_counter() - started
            rows.append(("service miss (synth + file + row)", miss, f"{len(first.audio)} bytes"))

            latencies: list[float] = []
            for _ in range(hits):
                started = time.perf_counter()
                result = await service.synthesize(LINE + " Now.")
                latencies.append(time.perf_counter() - started)
                assert result.cached
            latencies.sort()
            hit_median = statistics.median(latencies)
            p95 = latencies[int(0.95 * (len(latencies) - 1))]
            rows.append(("service cache hit (median)", hit_median, f"n={hits}"))
            rows.append(("service cache hit (p95)", p95, ""))
            await service.close()
            await pool.close()
        finally:
            server.cleanup()
    engine.close()

    print(f"{'measure':<36} {'ms':>9}  note")
    print("-" * 72)
    for name, seconds, note in rows:
        print(f"{name:<36} {ms(seconds)}  {note}")
    print("-" * 72)
    print(f"ratio (baseline = warm synth): cache hit is {warm_median / hit_median:.0f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    asyncio.run(run(repeats=4 if args.quick else 20, hits=50 if args.quick else 500))


if __name__ == "__main__":
    main()
