"""In-lap cues at real pace: the sample that passes a trigger -> the `cue` frame on the driver's socket (target
p99 < 100 ms with the WebSocket ingest), audio ready before the trigger (target >= 99 % of the cues the car
reached), and the cost of the trigger check on the ingest path (µs a batch).

A real `pitbox serve` (embedded PostgreSQL, live coaching, Piper speaking) and N drivers, each on one socket
that sends `telemetry` frames as a relay's --live mode does (a frame every 100 ms of data, not waiting for the
acks) and listens on its `ai:<driverId>`. Each streams a synthetic 1.8 km circuit with three corners, in real
time: an out-lap, a clean lap (the reference), then laps that each brake early at one or two corners by
10-60 m (random), so every lap is coached, its cues planned and spoken, and said on the next lap. Latency is
from sending the frame that holds the crossing sample (the cue's `firedT`) to reading the `cue` frame.
Audio readiness is what each cue became: said with its audio, or passed while its audio was not ready
(`audio_late`) or before its plan was there at all (`passed_before_armed`).

    PYTHONPATH=src python bench/cues.py [--quick] [--drivers N] [--laps N] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import orjson
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_server import local_server

from pitbox.app import build_services
from pitbox.config import Settings
from pitbox.cues.board import CueBoard, LiveCue, LivePlan
from pitbox.logs import configure_logging
from pitbox.sessions.models import SessionCreate

FloatArray = npt.NDArray[np.float64]

LENGTH = 1800.0
TOP_KMH = 200.0
BRAKING, ACCELERATION = 11.0, 5.0  # m/s²
CORNERS = ((520.0, 90.0), (1000.0, 125.0), (1450.0, 75.0))  # (apex metres, apex km/h)
HZ = 60
FRAME_S = 0.1  # a telemetry frame every 100 ms of data
TARGET_P99_MS = 100.0
TARGET_READY = 0.99


def lap_profile(early: dict[int, float]) -> tuple[FloatArray, FloatArray]:
    """(metres, m/s) of one lap on a 0.05 m grid: top speed, braking to each apex and accelerating out of it;
    braking `early[i]` metres sooner at corner i and holding the apex speed meanwhile."""
    s = np.arange(0.0, LENGTH, 0.05)
    v = np.full(s.size, TOP_KMH / 3.6)
    for index, (apex, kmh) in enumerate(CORNERS):
        slow = kmh / 3.6
        offset = (s - apex + LENGTH / 2) % LENGTH - LENGTH / 2
        before = np.maximum(-offset - early.get(index, 0.0), 0.0)
        braking = np.sqrt(slow**2 + 2 * BRAKING * before)
        accelerating = np.sqrt(slow**2 + 2 * ACCELERATION * np.maximum(offset, 0.0))
        v = np.minimum(v, np.where(offset <= 0, braking, accelerating))
    return s, v


def session_samples(laps: int, rng: random.Random) -> dict[str, FloatArray]:
    """60 Hz samples: an out-lap from 90 %, a clean lap, then `laps - 1` laps with one or two early brakings."""
    plans: list[dict[int, float]] = [{}, {}]
    for _ in range(laps - 1):
        corners = rng.sample(range(len(CORNERS)), rng.choice((1, 2)))
        plans.append({corner: rng.uniform(10.0, 60.0) for corner in corners})
    plans.append({})
    pieces_s, pieces_v, pieces_brake, pieces_lap = [], [], [], []
    for number, early in enumerate(plans):
        s, v = lap_profile(early)
        keep = s >= (0.9 * LENGTH if number == 0 else 0.0)
        pieces_s.append(s[keep] + (number - 1) * LENGTH)
        pieces_v.append(v[keep])
        pieces_brake.append(np.concatenate(([False], np.diff(v) < -1e-9))[keep])
        pieces_lap.append(np.full(int(keep.sum()), float(number)))
    s_all, v_all = np.concatenate(pieces_s), np.concatenate(pieces_v)
    times = np.concatenate(([0.0], np.cumsum(np.diff(s_all) / (0.5 * (v_all[1:] + v_all[:-1])))))
    end = float(np.interp(laps * LENGTH, s_all, times)) + 3.0  # 3 s past the last line
    t = np.arange(0.0, end, 1.0 / HZ)
    at = np.interp(t, times, s_all)
    index = np.clip(np.searchsorted(s_all, at), 0, s_all.size - 1)
    distance = np.mod(at, LENGTH)
    speed = np.interp(t, times, v_all) * 3.6
    braking = np.concatenate(pieces_brake)[index]
    angle = 2 * math.pi * distance / LENGTH
    return {
        "t": np.round(t, 6),
        "lap": np.concatenate(pieces_lap)[index],
        "lapDistPct": np.round(distance / LENGTH, 7),
        "lapDist": np.round(distance, 3),
        "speed": np.round(speed, 3),
        "throttle": np.where(braking, 0.0, 1.0),
        "brake": np.where(braking, 0.9, 0.0),
        "gear": np.clip(np.ceil(speed / 40.0), 1, 6),
        "x": np.round(300.0 * np.cos(angle), 3),
        "y": np.round(160.0 * np.sin(angle), 3),
    }


@dataclass
class DriverRun:
    """One driver's stream: when each frame went out (by the data time it ends at), and the cues heard."""

    driver_id: str
    session_id: str
    token: str
    sent: list[tuple[float, float, float]] = field(default_factory=list)  # (t_start, t_end, wall time sent)
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def sent_at(self, t: float) -> float | None:
        """Wall time the frame holding the sample at session time `t` was sent."""
        for start, end, wall in self.sent:
            if start <= t + 1e-9 and t <= end + 1e-9:
                return wall
        return None


async def drive(base_url: str, run: DriverRun, columns: dict[str, FloatArray]) -> None:
    """Stream the samples in real time over one socket, reading acks and the driver's ai channel."""
    ws_url = base_url.replace("http://", "ws://") + f"/ws?token={run.token}"
    async with connect(ws_url, compression=None, max_size=2**22) as ws:
        assert orjson.loads(await ws.recv())["type"] == "authenticated"
        await ws.send(orjson.dumps({"type": "subscribe", "channel": f"ai:{run.driver_id}"}).decode())
        reader = asyncio.create_task(read(ws, run))
        per_frame = int(round(FRAME_S * HZ))
        total = columns["t"].size
        started = time.perf_counter()
        for number, first in enumerate(range(0, total, per_frame)):
            part = {name: values[first : first + per_frame] for name, values in columns.items()}
            due = started + float(part["t"][-1])  # a frame leaves when its last sample has been "driven"
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            body = {
                "type": "telemetry",
                "id": f"f{number}",
                "driverId": run.driver_id,
                "sessionId": run.session_id,
                "seq": number,
                "columns": {name: values.tolist() for name, values in part.items()},
            }
            frame = orjson.dumps(body).decode()
            run.sent.append((float(part["t"][0]), float(part["t"][-1]), time.perf_counter()))
            await ws.send(frame)
        await asyncio.sleep(2.0)  # the last acks and messages
        reader.cancel()


async def read(ws: ClientConnection, run: DriverRun) -> None:
    async for raw in ws:
        frame = orjson.loads(raw)
        if frame["type"] == "error":
            run.errors.append(str(frame)[:200])
        elif frame["type"] == "message" and frame["data"].get("type") == "cue":
            received = time.perf_counter()
            sent = run.sent_at(float(frame["data"]["cue"]["firedT"]))
            if sent is not None:
                run.latencies_ms.append((received - sent) * 1000)


async def make_drivers(settings: Settings, count: int) -> list[DriverRun]:
    """Drivers with a session each on the synthetic circuit, and a token for their socket."""
    runs = []
    async with build_services(settings) as services:
        for _ in range(count):
            user = await services.users.create_user(f"bench-{uuid.uuid4().hex[:8]}@pitbox.test", "driver")
            principal = await services.credentials.authenticate(
                services.logins.issue_token(uuid.UUID(user["id"]))[0]
            )
            session = await services.sessions.create(
                principal,
                SessionCreate(
                    driver_id=uuid.UUID(user["driverId"]),
                    name="cue bench",
                    track_name="Cue Bench Ring",
                    track_length_m=LENGTH,
                    car="Bench car",
                ),
            )
            token, _ = services.logins.issue_token(uuid.UUID(user["id"]))
            runs.append(DriverRun(user["driverId"], str(session.id), token))
    return runs


async def outcomes(base_url: str, runs: list[DriverRun]) -> list[dict[str, Any]]:
    """Every cue of every session, as GET /api/sessions/{id}/cues answers."""
    cues: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for run in runs:
            answer = await client.get(
                f"/api/sessions/{run.session_id}/cues?limit=1000",
                headers={"Authorization": f"Bearer {run.token}"},
            )
            cues += answer.json()
    return cues


def observe_us(board: CueBoard, session: uuid.UUID, window: dict[str, FloatArray], loops: int) -> float:
    """µs one `observe` of this batch takes, over `loops` calls."""
    started = time.perf_counter()
    for _ in range(loops):
        board.observe(session, window)
    return (time.perf_counter() - started) / loops * 1e6


def board_cost() -> None:
    """µs per batch of the trigger check: no plan, and a plan of three cues, for 6- and 60-sample batches."""
    session, driver = uuid.uuid4(), uuid.uuid4()
    columns = session_samples(2, random.Random(1))
    print("\n| trigger check (CueBoard.observe, one core) | µs a batch |")
    print("|---|---|")
    for size in (6, 60):
        window = {name: values[600 : 600 + size] for name, values in columns.items()}
        no_plan = observe_us(CueBoard(), session, window, 20_000)
        board = CueBoard()
        # Triggers this batch never reaches: every call checks all three cues (the usual batch of a lap).
        cues = [LiveCue(uuid.uuid4(), trigger, 100.0, True) for trigger in (1500.0, 1600.0, 1700.0)]
        board.install(LivePlan(uuid.uuid4(), session, driver, 0.0, LENGTH, cues))
        planned = observe_us(board, session, window, 20_000)
        assert board.plan(session) is not None
        print(f"| {size}-sample batch, no plan | {no_plan:.2f} |")
        print(f"| {size}-sample batch, a plan of 3 cues | {planned:.1f} |")


async def run(drivers: int, laps: int, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as workdir:
        async with local_server(Path(workdir)) as server:
            runs = await make_drivers(server.settings, drivers)
            streams = [session_samples(laps, rng) for _ in runs]
            seconds = max(float(columns["t"][-1]) for columns in streams)
            print(f"{drivers} drivers x {laps} laps in real time ({seconds:.0f} s)...", file=sys.stderr)
            await asyncio.gather(
                *(drive(server.base, r, columns) for r, columns in zip(runs, streams, strict=True))
            )
            await asyncio.sleep(3.0)  # the last laps' efficacy
            cues = await outcomes(server.base, runs)
    latencies = [ms for r in runs for ms in r.latencies_ms]
    errors = [error for r in runs for error in r.errors]
    states: dict[str, int] = {}
    for cue in cues:
        label = cue["state"] if cue["state"] != "expired" else f"expired ({cue['reason']})"
        states[label] = states.get(label, 0) + 1
    fired = [cue for cue in cues if cue["state"] == "fired"]
    late = [cue for cue in cues if cue["reason"] in ("audio_late", "passed_before_armed")]
    reached = len(fired) + len(late)
    ready = sum(1 for cue in fired if cue["audioUrl"]) / reached if reached else float("nan")
    print("\n| measure | value | target | ratio |")
    print("|---|---|---|---|")
    if latencies:
        p50, p99 = float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))
        print(
            f"| crossing sample -> cue frame, p50 / p99 (n={len(latencies)}) | {p50:.1f} / {p99:.1f} ms "
            f"| p99 < {TARGET_P99_MS:.0f} ms | {p99 / TARGET_P99_MS:.2f} |"
        )
    print(
        f"| audio ready before the trigger | {ready:.1%} ({reached - len(late)} of {reached}) "
        f"| >= {TARGET_READY:.0%} | {ready / TARGET_READY:.2f} |"
    )
    margins = []
    for cue in fired:
        if cue["audioReadyAt"] and cue["firedAt"]:
            margins.append(
                (
                    datetime.fromisoformat(cue["firedAt"]) - datetime.fromisoformat(cue["audioReadyAt"])
                ).total_seconds()
            )
    if margins:
        print(
            f"| audio ready ahead of the trigger, min / median | {min(margins):.1f} / "
            f"{float(np.median(margins)):.1f} s | > 0 | |"
        )
    print(f"| cues by state | {', '.join(f'{k} {v}' for k, v in sorted(states.items()))} | | |")
    measured = [cue for cue in fired if cue["efficacy"]]
    helped = sum(1 for cue in measured if cue["efficacy"].get("verdict") == "helped")
    print(f"| fired cues measured after their lap (helped) | {len(measured)} ({helped}) | | |")
    if errors:
        print(f"errors: {errors[:5]}", file=sys.stderr)
    board_cost()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 drivers x 4 laps (about 3 minutes)")
    parser.add_argument("--drivers", type=int, default=None)
    parser.add_argument("--laps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    configure_logging(logging.WARNING)  # the result alone on stdout
    drivers = args.drivers or (3 if args.quick else 6)
    laps = args.laps or (4 if args.quick else 10)
    asyncio.run(run(drivers, laps, args.seed))


if __name__ == "__main__":
    main()
