"""Replay: real recordings streamed into a real server come back the same, laps included; the demo shows live data."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from pitbox.client import PitboxClient
from pitbox.recordings import open_recording
from pitbox.replay import replay_recording
from tests.conftest import RunningServer, Team, free_port, pitbox_cli, shared_data

LANGLEY = "iracing_ibt/robrobertsce/skmodified_langley 2015-05-28 14-46-23.ibt"


async def test_replayed_recording_reads_back_the_same_samples_and_laps(
    server: RunningServer, team: Team
) -> None:
    recording = open_recording(shared_data(LANGLEY))
    driver = team.driver.driver_id
    assert driver is not None
    async with PitboxClient(server.url, token=team.engineer.token) as pitbox:
        session = await pitbox.create_session(driver, "Replay at max speed", sim="iracing")
        # One second a batch over the socket (a 600-sample batch of 150 iRacing channels would pass 1 MB).
        result = await replay_recording(
            pitbox, recording, driver_id=driver, session_id=session["id"], speed=None, batch_size=60
        )
        assert result.samples == recording.n_samples
        assert result.transport == "websocket"
        # Running the same replay again over HTTP (a relay agent retrying everything) stores nothing twice.
        again = await replay_recording(
            pitbox,
            recording,
            driver_id=driver,
            session_id=session["id"],
            speed=None,
            batch_size=600,
            transport="http",
        )
        assert again.transport == "http"
        stored = await pitbox.telemetry(session["id"], channels="t,speed,lap", format="json", limit=100000)
        laps = await pitbox.laps(session["id"])
    assert stored["count"] == recording.n_samples
    np.testing.assert_array_equal(np.array(stored["columns"]["t"]), recording.channels["t"])
    # Measured channels keep 16 mantissa bits on disk (relative error <= 2**-17): see docs/telemetry.md.
    np.testing.assert_allclose(np.array(stored["columns"]["speed"]), recording.channels["speed"], rtol=2e-5)
    got = [lap for lap in (laps["laps"] if isinstance(laps, dict) else laps) if lap["valid"]]
    assert [lap["lapTime"] for lap in got] == pytest.approx([15.183, 15.100], abs=1 / 60)  # the data README


def test_demo_shows_live_telemetry_on_the_socket(tmp_path: Path) -> None:
    """The demo's stdout is its result only, one JSON line (what to open, how to sign in); words on stderr."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JWT_SECRET")}
    env["LOG_LEVEL"] = "warning"
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pitbox",
                "demo",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
                "--speed",
                "5",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "demo exited before announcing itself"
        announced = json.loads(line)  # the first line of stdout is the result, nothing before it
        assert (
            announced["url"] == f"http://127.0.0.1:{port}/" and announced["email"] and announced["password"]
        )
        token, driver = announced["token"], announced["driverId"]
        assert announced["channel"] == f"telemetry:{driver}"

        async def watch() -> dict[str, object]:
            async with (
                PitboxClient(f"http://127.0.0.1:{port}", token=token) as pitbox,
                pitbox.subscribe([f"telemetry:{driver}"]) as live,
            ):
                return await asyncio.wait_for(live.receive(), timeout=60)

        message = asyncio.run(watch())
        assert message["channel"] == f"telemetry:{driver}"

        async def demo_session() -> dict[str, object]:
            async with PitboxClient(f"http://127.0.0.1:{port}", token=token) as pitbox:
                listed = await pitbox.sessions(driver)
                session: dict[str, object] = listed[0]
                return session

        session = asyncio.run(demo_session())  # the recording's track and car, as the dashboard shows them
        assert (session["trackName"], session["car"]) == ("Langley Speedway", "Modified - SK")
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=60)
    assert rest == "", "nothing but the result on stdout"
    words = stderr_path.read_text()
    assert f"log in as {announced['email']}" in words and f"channel telemetry:{driver}" in words


async def test_a_recording_looped_in_one_session_continues_as_new_laps(
    server: RunningServer, team: Team
) -> None:
    """The demo's loop: each pass of the recording (its lap counter starting over) adds its laps under new
    numbers, none overwritten."""
    from pitbox.demo import synthetic_recording

    recording = synthetic_recording(laps=3)
    counter = recording.channels["lap"]
    per_pass = len(np.unique(counter)) - 1  # the recording's own counter: the laps it completes
    driver = team.driver.driver_id
    assert driver is not None
    async with PitboxClient(server.url, token=team.engineer.token) as pitbox:
        session = await pitbox.create_session(driver, "Looped", sim="synthetic")
        for loop in range(2):
            await replay_recording(
                pitbox,
                recording,
                driver_id=driver,
                session_id=session["id"],
                speed=None,
                batch_size=600,
                t_offset=loop * (recording.duration_s + 1.0),
                transport="http",
            )
        laps = await pitbox.laps(session["id"])
    numbers = [lap["lap"] for lap in laps]
    assert len(numbers) == len(set(numbers)) == 2 * per_pass
    assert max(lap["tEnd"] for lap in laps) > recording.duration_s  # the second pass is there


async def test_replayed_sessions_carry_the_track_and_car_the_recording_names(
    server: RunningServer, client: httpx.AsyncClient, team: Team
) -> None:
    """`pitbox replay` names the session's track and car from the file; what the file lacks comes from options."""
    import irsdk

    pit_exit = shared_data("iracing_ibt/robrobertsce/skmodified_langley 2015-05-28 14-45-12.ibt")
    ibt = irsdk.IBT()
    ibt.open(str(pit_exit))
    try:  # the lap length iRacing itself states: LapDist over LapDistPct
        dist, pct = np.array(ibt.get_all("LapDist")), np.array(ibt.get_all("LapDistPct"))
    finally:
        ibt.close()
    middle = (pct > 0.1) & (pct < 0.9)
    langley_m = float(np.median(dist[middle] / pct[middle]))
    monza = shared_data("udp_captures_vthinsel/AssettoCorsa_monza_A8LMS.raw")
    token = team.engineer.token
    driver = str(team.driver.driver_id)
    common = ["--driver", driver, "--speed", "max", "--server", server.url, "--token", token]
    iracing = await pitbox_cli(server, "replay", str(pit_exit), "--session", "pit exit", *common)
    assert iracing.returncode == 0, iracing.stderr
    # An Assetto Corsa capture names neither track nor car: the operator does.
    ac = await pitbox_cli(
        server,
        "replay",
        str(monza),
        "--session",
        "monza",
        "--track",
        "Monza",
        "--car",
        "Audi R8 LMS",
        *common,
    )
    assert ac.returncode == 0, ac.stderr
    listed = await client.get(f"/api/sessions/{driver}", headers=team.engineer.headers)
    sessions = {session["name"]: session for session in listed.json()}
    langley = sessions["pit exit"]
    assert (langley["trackName"], langley["trackConfig"], langley["car"], langley["sim"]) == (
        "Langley Speedway",
        "",
        "Modified - SK",
        "iracing",
    )
    assert langley["trackLengthM"] == pytest.approx(langley_m, abs=0.5)
    assert (sessions["monza"]["trackName"], sessions["monza"]["car"]) == ("Monza", "Audi R8 LMS")
    assert sessions["monza"]["trackLengthM"] == pytest.approx(5793.0, rel=0.01)  # Monza's published length


async def test_a_replayed_acc_motec_export_names_the_car_the_file_names(
    server: RunningServer, client: httpx.AsyncClient, team: Team
) -> None:
    """ACC's .ld export names its car only in the vehicle block (the header's field is empty)."""
    export = shared_data("motec_ld/acc_kyalami_audi_r8_lms_evo.ld")
    driver = str(team.driver.driver_id)
    common = ["--driver", driver, "--speed", "max", "--server", server.url, "--token", team.engineer.token]
    replayed = await pitbox_cli(server, "replay", str(export), "--session", "kyalami", *common)
    assert replayed.returncode == 0, replayed.stderr
    session = await client.get(
        f"/api/sessions/{json.loads(replayed.stdout)['sessionId']}/summary", headers=team.engineer.headers
    )
    assert session.status_code == 200, session.text
    # The README: "Kyalami, Audi R8 LMS Evo"; the file writes the car "R8 LMS EVO".
    assert (session.json()["trackName"], session.json()["car"], session.json()["sim"]) == (
        "Kyalami",
        "R8 LMS EVO",
        "motec",
    )


async def test_replay_command_prints_its_result_as_json_and_progress_on_stderr(
    server: RunningServer, team: Team, tmp_path: Path
) -> None:
    recording = tmp_path / "stint.csv"
    recording.write_text("t,speed\n" + "".join(f"{i / 60:.4f},{150 + i % 7}\n" for i in range(120)))
    replayed = await pitbox_cli(
        server,
        "replay",
        str(recording),
        "--driver",
        team.driver.driver_id or "",
        "--session",
        "from a CSV",
        "--speed",
        "max",
        "--server",
        server.url,
        "--token",
        team.driver.token,
    )
    assert replayed.returncode == 0, replayed.stderr
    result = json.loads(replayed.stdout)
    assert result["samples"] == 120 and result["seconds"] >= 0
    assert "replaying 120 samples" in replayed.stderr
    async with PitboxClient(server.url, token=team.driver.token) as pitbox:
        assert (await pitbox.telemetry(result["sessionId"], channels="speed"))["count"] == 120
