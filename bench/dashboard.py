"""Dashboard benchmark: page load on loopback, and frame pacing with ten drivers live at once.

A `pitbox serve` process on an embedded PostgreSQL in a temp dir (its own origin in CORS_ORIGINS, as a
deployment serving the page), headless Debian Chromium through Playwright. Measures:

* page load: a cold browser context opening `/` with a token (navigation to `load`, and to the first driver
  listed, which needs /api/me and /api/drivers), median and worst of several runs; target < 1 s.
* ten drivers live: ten replays of the real Langley recording at 1x, 10 batches a second each, while the page
  shows one driver in detail (20 msg/s) and the other nine in the list (4 msg/s). Frame intervals from
  requestAnimationFrame (p50/p95/p99/max, frames over 50 ms), messages handled, JS heap before and after.

    PYTHONPATH=src python bench/dashboard.py [--quick]

Needs `pip install playwright` and /usr/bin/chromium (apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pitbox.app import build_services
from pitbox.client import PitboxClient
from pitbox.config import Settings
from pitbox.recordings import open_recording
from pitbox.replay import replay_recording

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_server import local_server

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LANGLEY = DATA / "iracing_ibt/robrobertsce/skmodified_langley 2015-05-28 14-46-23.ibt"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "bench password 1234"
LOAD_TARGET_MS = 1000.0
BUSY_METER = """
window.__busy = 0;
const meter = (owner, name) => {
  const original = owner[name].bind(owner);
  owner[name] = (...args) => {
    const start = performance.now();
    try { return original(...args); } finally { window.__busy += performance.now() - start; }
  };
};
const d = window.pitboxDashboard;
meter(d, "drawLive"); meter(d, "drawOverview"); meter(d.socket, "receive");
"""
FRAME_TARGET_MS = 1000.0 / 30  # p95 frame interval: never below 30 fps
FRAME_RECORDER = """
if (!window.__frames) {
  (function tick(previous) {
    requestAnimationFrame((now) => { if (previous) window.__frames.push(now - previous); tick(now); });
  })(0);
}
window.__frames = [];
"""


@contextlib.asynccontextmanager
async def served(workdir: Path) -> AsyncIterator[tuple[str, Settings]]:
    """`pitbox serve` on an embedded PostgreSQL; yields its URL and settings."""
    async with local_server(workdir) as server:
        yield server.base, server.settings


async def team_of_ten(settings: Settings) -> tuple[str, str, list[str]]:
    """An engineer (email, token) of a team with ten drivers."""
    from pitbox.auth.principal import Principal

    async with build_services(settings) as services:
        manager = await services.users.create_user(f"m-{uuid.uuid4().hex[:6]}@pitbox.test", "manager")
        principal = Principal(kind="user", user_id=uuid.UUID(manager["id"]), role="manager")
        team = await services.teams.create_team(principal, "Bench team")
        team_id = team.id
        email = f"e-{uuid.uuid4().hex[:6]}@pitbox.test"
        engineer = await services.users.create_user(email, "engineer", password=PASSWORD, team_id=team_id)
        token, _ = services.logins.issue_token(uuid.UUID(engineer["id"]))
        drivers = []
        for _ in range(10):
            user = await services.users.create_user(
                f"d-{uuid.uuid4().hex[:6]}@pitbox.test", "driver", team_id=team_id
            )
            drivers.append(str(user["driverId"]))
    return email, token, drivers


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def page_load(browser: Any, origin: str, token: str, runs: int) -> list[tuple[float, float]]:
    """(ms to the load event, ms to the first driver listed) for `runs` cold contexts."""
    results = []
    for _ in range(runs):
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        await context.add_init_script(f"sessionStorage.setItem('pitbox.token', {token!r})")
        page = await context.new_page()
        await page.goto(origin + "/")
        await page.wait_for_selector("#driver-list li.driver")
        listed = await page.evaluate("performance.getEntriesByName('pitbox:drivers-listed')[0].startTime")
        load = await page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
        if os.environ.get("BENCH_VERBOSE"):
            entries = await page.evaluate(
                "performance.getEntriesByType('resource').map(e => [e.name.split('/').slice(3).join('/'),"
                " Math.round(e.startTime), Math.round(e.responseEnd)])"
            )
            print(
                "navigation",
                await page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])"),
            )
            for entry in entries:
                print("  ", entry)
        results.append((float(load), float(listed)))
        await context.close()
    return results


async def ten_live(
    browser: Any, origin: str, token: str, drivers: list[str], seconds: float
) -> dict[str, Any]:
    """Frame pacing while ten replays stream and the page shows them."""
    recording = open_recording(LANGLEY)
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    await context.add_init_script(f"sessionStorage.setItem('pitbox.token', {token!r})")
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(origin + "/")
    await page.wait_for_selector("#connection[data-state=live]")
    async with PitboxClient(origin, token=token) as pitbox:
        sessions = [await pitbox.create_session(d, "bench", sim="iracing") for d in drivers]
        heap_before = await page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
        await page.evaluate(FRAME_RECORDER)
        await asyncio.sleep(min(seconds, 5.0))  # the baseline: the same page with nobody driving
        idle: list[float] = await page.evaluate("window.__frames")
        replays = [
            asyncio.create_task(
                replay_recording(pitbox, recording, driver_id=d, session_id=s["id"], speed=1.0, batch_size=6)
            )
            for d, s in zip(drivers, sessions, strict=True)
        ]
        await asyncio.sleep(2.0)  # let every stream start before measuring
        await page.evaluate(FRAME_RECORDER)
        await page.evaluate(BUSY_METER)
        received_before = await page.evaluate("window.pitboxDashboard.socket.received")
        await asyncio.sleep(seconds)
        frames: list[float] = await page.evaluate("window.__frames")
        busy_ms = float(await page.evaluate("window.__busy"))
        received = await page.evaluate("window.pitboxDashboard.socket.received") - received_before
        heap_after = await page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
        points = await page.get_attribute("#traces", "data-shown")
        for task in replays:
            task.cancel()
        await asyncio.gather(*replays, return_exceptions=True)
    await context.close()
    return {
        "frames": frames,
        "received": received,
        "seconds": seconds,
        "heap": (heap_before, heap_after),
        "errors": errors,
        "points": points,
        "idle": idle,
        "busy": busy_ms,
    }


async def run(quick: bool) -> None:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as workdir:
        async with served(Path(workdir)) as (origin, settings), async_playwright() as playwright:
            _, token, drivers = await team_of_ten(settings)
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            loads = await page_load(browser, origin, token, 3 if quick else 10)
            live = await ten_live(browser, origin, token, drivers, 8.0 if quick else 30.0)
            await browser.close()
    load_ms = [load for load, _ in loads]
    listed_ms = [listed for _, listed in loads]
    frames = live["frames"]
    idle = live["idle"]
    print(f"{'measure':44} {'value':>12} {'target':>10} {'ratio':>7}")
    rows = [
        ("page load to `load` event, median (ms)", statistics.median(load_ms), LOAD_TARGET_MS),
        ("page load to `load` event, worst (ms)", max(load_ms), LOAD_TARGET_MS),
        ("page load to first driver listed, median (ms)", statistics.median(listed_ms), LOAD_TARGET_MS),
        ("page load to first driver listed, worst (ms)", max(listed_ms), LOAD_TARGET_MS),
        ("10 live: frame interval p50 (ms)", percentile(frames, 0.5), FRAME_TARGET_MS),
        ("10 live: frame interval p95 (ms)", percentile(frames, 0.95), FRAME_TARGET_MS),
        ("10 live: frame interval p99 (ms)", percentile(frames, 0.99), FRAME_TARGET_MS),
        ("10 live: frame interval max (ms)", max(frames) if frames else float("nan"), 100.0),
    ]
    for name, value, target in rows:
        print(f"{name:44} {value:12.1f} {target:10.1f} {value / target:7.2f}")
    print(
        f"{'frame interval p95, 10 live / nobody live':44} {percentile(frames, 0.95):12.1f} "
        f"{percentile(idle, 0.95):10.1f} {percentile(frames, 0.95) / percentile(idle, 0.95):7.2f}"
    )
    long_frames = sum(1 for f in frames if f > 50)
    print(f"{'10 live: frames drawn / over 50 ms':44} {len(frames):>8} / {long_frames}")
    print(
        f"{'10 live: dashboard JS (parse+draw), % of wall':44} {100 * live['busy'] / 1000 / live['seconds']:12.1f}"
    )
    print(f"{'10 live: socket messages handled per s':44} {live['received'] / live['seconds']:12.1f}")
    print(f"{'10 live: samples on the selected chart':44} {live['points']:>12}")
    before, after = live["heap"]
    print(f"{'10 live: JS heap before -> after (MB)':44} {before / 1e6:8.1f} -> {after / 1e6:.1f}")
    print(f"console errors: {len(live['errors'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 loads and 8 s live instead of 10 and 30 s")
    args = parser.parse_args()
    if not LANGLEY.exists():
        raise SystemExit(f"recording not found: {LANGLEY} (../shared/data must be beside the checkout)")
    if not Path(CHROMIUM).exists():
        raise SystemExit("/usr/bin/chromium is missing: apt-get install -y chromium")
    asyncio.run(run(args.quick))


if __name__ == "__main__":
    main()
