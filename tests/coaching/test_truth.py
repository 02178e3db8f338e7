"""The truth test: every recording in ../shared/data that marks laps, fed to a real server as a relay agent
catching up would (the recording's columns in one or two batches), then held against what this test reads
from the raw files itself.

* Lap times within 1/60 s of the recording's own: iRacing's LapLastLapTime (pyirsdk), MoTeC's "Lap Time"
  (and the data README's 65.15 / 63.68 / 65.18 / 63.75 s), Assetto Corsa's `lastLap` (the packets, by struct).
* Each session carries the recording's track and car, and the lap length its data shows (within 1 %).
* Every coaching item, live and on request: its time is the growth of the delta over its range (0.02 s),
  and each brake point, minimum speed and full-throttle point it cites is within 10 m / 1 km/h of this
  test's own numpy over the raw samples (tests/coaching/conftest.py); each gear it cites (both laps' gear
  at their slowest point, and any "another gear" cause) is the gear the raw recording shows there.
"""

from __future__ import annotations

import csv
import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from pitbox.recordings import open_recording
from pitbox.replay import session_fields
from tests.conftest import RunningServer, Team, shared_data

from .conftest import CALDER, CALDER_LAP_TIMES, LANGLEY, LANGLEY_STAMPS, RawLap, RealLaps, check_item, read_ld
from .test_feedback_api import STREAMED, columns_json

MONZA = "udp_captures_vthinsel/AssettoCorsa_monza_A8LMS.raw"
KYALAMI = "motec_ld/acc_kyalami_audi_r8_lms_evo.ld"
FRAME = 1 / 60  # the tolerance on a lap time: one frame of a 60 Hz sim


async def feed(
    client: httpx.AsyncClient, team: Team, path: str, *, track: str | None = None, car: str | None = None
) -> dict[str, Any]:
    """A session made as `pitbox replay` makes it, and the recording's columns sent in batches of 10,000."""
    recording = open_recording(shared_data(path))
    fields = session_fields(recording, track=track, car=car)
    body = {"driverId": team.driver.driver_id, "name": Path(path).name, **fields}
    created = await client.post("/api/sessions", json=body, headers=team.engineer.headers)
    assert created.status_code == 201, created.text
    session: dict[str, Any] = created.json()
    columns = {name: recording.channels[name] for name in STREAMED if name in recording.channels}
    for start in range(0, recording.n_samples, 10_000):
        part = {name: values[start : start + 10_000] for name, values in columns.items()}
        sent = await client.post(
            "/api/telemetry",
            json={
                "driverId": team.driver.driver_id,
                "sessionId": session["id"],
                "batchId": str(start),
                "columns": columns_json(part),
            },
            headers=team.driver.headers,
        )
        assert sent.status_code == 201, sent.text
    return session


async def laps_of(client: httpx.AsyncClient, team: Team, session: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/sessions/{session['id']}/laps", headers=team.driver.headers)
    assert answer.status_code == 200, answer.text
    laps: list[dict[str, Any]] = answer.json()
    return laps


async def summary_of(client: httpx.AsyncClient, team: Team, session: dict[str, Any]) -> dict[str, Any]:
    answer = await client.get(f"/api/sessions/{session['id']}/summary", headers=team.driver.headers)
    summary: dict[str, Any] = answer.json()
    return summary


async def test_iracing_laps_and_coaching_are_true_to_the_files(
    quiet: httpx.AsyncClient, quiet_server: RunningServer, team: Team, langley: RealLaps
) -> None:
    coached: list[tuple[dict[str, Any], list[RawLap]]] = []
    valid: list[dict[str, Any]] = []
    for stamp in LANGLEY_STAMPS:  # one session after the other, as they were driven
        session = await feed(quiet, team, LANGLEY.format(stamp))
        summary = await summary_of(quiet, team, session)
        assert (summary["trackName"], summary["car"], summary["sim"]) == (
            "Langley Speedway",
            "Modified - SK",
            "iracing",
        )
        assert summary["trackLengthM"] == pytest.approx(langley.length, rel=0.01)
        valid += [
            dict(lap, session=session["id"]) for lap in await laps_of(quiet, team, session) if lap["valid"]
        ]
        coached += await live_feedback(
            quiet, quiet_server, team, session, [langley.lap(lap["lap"]) for lap in valid]
        )
    # Every lap the files time is found, with the files' time; no other lap counts.
    assert sorted(lap["lap"] for lap in valid) == sorted(lap.number for lap in langley.laps)
    for lap in valid:
        assert lap["lapTime"] == pytest.approx(langley.lap(lap["lap"]).time, abs=FRAME)
    assert {feedback["lap"] for feedback, _ in coached} == {lap["lap"] for lap in valid}
    coached += await asked_feedback(quiet, team, valid, langley.laps)
    check_feedback(coached, langley, summary["trackLengthM"])


async def test_motec_laps_and_coaching_are_true_to_the_log(
    quiet: httpx.AsyncClient, quiet_server: RunningServer, team: Team, calder: RealLaps
) -> None:
    # The logger's own "Lap Time" after each lap, read here, is the data README's.
    assert [lap.time for lap in calder.laps] == list(CALDER_LAP_TIMES)
    session = await feed(quiet, team, CALDER)
    summary = await summary_of(quiet, team, session)
    assert (summary["trackName"], summary["car"], summary["sim"]) == ("Calder", "11A", "motec")
    assert summary["trackLengthM"] == pytest.approx(calder.length, rel=0.01)
    laps = await laps_of(quiet, team, session)
    valid = [dict(lap, session=session["id"]) for lap in laps if lap["valid"]]
    assert [lap["lap"] for lap in valid] == [1, 2, 3, 4]
    assert [lap["lapTime"] for lap in valid] == pytest.approx(CALDER_LAP_TIMES, abs=FRAME)
    for lap, raw in zip(valid, calder.laps, strict=True):  # the lines where MoTeC's timer restarts
        assert lap["tEnd"] == pytest.approx(raw.t_end, abs=FRAME)
    coached = await live_feedback(quiet, quiet_server, team, session, calder.laps)
    assert {feedback["lap"] for feedback, _ in coached} == {1, 2, 3, 4}
    coached += await asked_feedback(quiet, team, valid, calder.laps)
    check_feedback(coached, calder, summary["trackLengthM"])
    # Lap 3 against lap 2, as the driver would ask: the delta line to line, and /compare with the same sign.
    asked = await quiet.post(
        "/api/ai/feedback",
        json={
            "driverId": team.driver.driver_id,
            "sessionId": session["id"],
            "telemetryData": {"lap": 3, "reference": {"sessionId": session["id"], "lap": 2}},
        },
        headers=team.driver.headers,
    )
    assert asked.status_code == 201, asked.text
    assert "+1.51 s to lap 2 of the reference session" in asked.json()["summary"]
    for item in asked.json()["items"]:
        assert check_item(item, calder.lap(3), calder.lap(2), summary["trackLengthM"]) == 2
    compared = await quiet.get(
        f"/api/sessions/{session['id']}/laps/3/compare", params={"with": "2"}, headers=team.driver.headers
    )
    line_to_line = [lap.t_end - lap.t_start for lap in (calder.lap(3), calder.lap(2))]
    assert compared.json()["delta"][-1] == pytest.approx(line_to_line[0] - line_to_line[1], abs=0.05)
    assert compared.json()["delta"][-1] > 1.4  # positive: this lap (3) is behind the other (2)


async def live_feedback(
    client: httpx.AsyncClient,
    server: RunningServer,
    team: Team,
    session: dict[str, Any],
    driven: list[RawLap],
) -> list[tuple[dict[str, Any], list[RawLap]]]:
    """The feedback live coaching gave a session's laps, each with the laps driven by then."""
    coaching = server.services.coaching
    assert coaching is not None
    await coaching.live.idle()  # ingest queued each completed lap; its coaching runs in the background
    listed = await client.get(f"/api/sessions/{session['id']}/feedback", headers=team.driver.headers)
    return [(feedback, list(driven)) for feedback in listed.json()]


async def asked_feedback(
    client: httpx.AsyncClient, team: Team, valid: list[dict[str, Any]], driven: list[RawLap]
) -> list[tuple[dict[str, Any], list[RawLap]]]:
    """Feedback asked for each lap once every lap is driven (POST /api/ai/feedback {"lap": N})."""
    answers = []
    for lap in valid:
        asked = await client.post(
            "/api/ai/feedback",
            json={
                "driverId": team.driver.driver_id,
                "sessionId": lap["session"],
                "telemetryData": {"lap": lap["lap"]},
            },
            headers=team.driver.headers,
        )
        assert asked.status_code == 201, asked.text
        answers.append((asked.json(), list(driven)))
    return answers


def check_feedback(coached: list[tuple[dict[str, Any], list[RawLap]]], real: RealLaps, length: float) -> None:
    """Each feedback names the right reference in true words, and each of its items is true to the samples.

    The reference is the fastest other lap driven by then, whichever session it is in; laps are numbered in
    the order they were driven."""
    items = gears = 0
    for feedback, driven in coached:
        mine = real.lap(feedback["lap"])
        reference = min((other for other in driven if other.number != mine.number), key=lambda lap: lap.time)
        if mine.time >= reference.time:
            words = f"to your best lap ({reference.time:.3f} s)"
        elif reference.number < mine.number:
            words = f"a new best, {reference.time - mine.time:.2f} s faster than your previous best lap"
        else:
            words = f"to your next-best lap ({reference.time:.3f} s)"
        assert words in feedback["summary"], feedback["summary"]
        for item in feedback["items"]:
            gears += check_item(item, mine, reference, length)
            items += 1
    assert items >= len(coached) // 2
    assert gears == 2 * items, "every item's evidence names both laps' gears (the recordings log gears)"


def monza_packets() -> tuple[np.ndarray[Any, Any], dict[str, np.ndarray[Any, Any]]]:
    """(capture time of each packet, fields) of the Assetto Corsa capture, read with struct from the public
    RTCarInfo layout: lastLap (ms) at byte 44, lapCount at 52, carPositionNormalized at 308."""
    raw = shared_data(MONZA).read_bytes()
    with shared_data(MONZA.replace(".raw", ".timing.csv")).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    clock = np.cumsum([float(row["delta_s"]) for row in rows])
    fields: dict[str, list[float]] = {"lastLap": [], "lapCount": [], "position": []}
    for row in rows:
        packet = raw[int(row["raw_offset"]) : int(row["raw_offset"]) + int(row["length"])]
        fields["lastLap"].append(struct.unpack_from("<i", packet, 44)[0] / 1000.0)
        fields["lapCount"].append(struct.unpack_from("<i", packet, 52)[0])
        fields["position"].append(struct.unpack_from("<f", packet, 308)[0])
    return clock - clock[0], {name: np.asarray(values) for name, values in fields.items()}


async def test_assetto_corsa_out_lap_is_found_and_timed_as_the_game_timed_it(
    client: httpx.AsyncClient, team: Team
) -> None:
    clock, packets = monza_packets()
    wrap = int(np.flatnonzero(np.diff(packets["position"]) < -0.5)[0])
    line = clock[wrap] + (1 - packets["position"][wrap]) / (
        packets["position"][wrap + 1] + 1 - packets["position"][wrap]
    ) * (clock[wrap + 1] - clock[wrap])
    game_time = packets["lastLap"][packets["lapCount"] == 1][0]  # 344.684 s: the lap began in the pits
    session = await feed(client, team, MONZA, track="Monza", car="Audi R8 LMS")
    summary = await summary_of(client, team, session)
    assert summary["trackLengthM"] == pytest.approx(5793.0, rel=0.01)  # Monza's published length
    (lap,) = await laps_of(client, team, session)
    assert lap["lapTime"] == pytest.approx(game_time, abs=FRAME)
    assert lap["tEnd"] == pytest.approx(line, abs=FRAME)
    assert not lap["valid"] and lap["invalidReasons"] == ["started_mid_lap"]  # from the pit lane


async def test_acc_log_without_lap_markers_gets_no_invented_lap(
    client: httpx.AsyncClient, team: Team
) -> None:
    """ACC's export of Kyalami comes without its .ldx: no beacon fires (LAP_BEACON is 0 throughout), and no
    lap counter, lap distance or lap timer is logged. It is one drive out of the pit box; no line is marked."""
    ld = read_ld(shared_data(KYALAMI))
    assert not np.any(ld["LAP_BEACON"][0])
    assert not {"Lap Number", "Lap Distance", "Running Lap Time", "Lap Time"} & set(ld)
    speed, hz = ld["SPEED"]
    session = await feed(client, team, KYALAMI)
    summary = await summary_of(client, team, session)
    assert (summary["trackName"], summary["sim"], summary["lapCount"]) == ("Kyalami", "motec", 0)
    driven = float(np.sum(speed) / hz)  # m/s, integrated here
    assert summary["distanceM"] == pytest.approx(driven, rel=0.01)
    assert await laps_of(client, team, session) == []


def test_every_raw_lap_of_the_oracle_is_a_full_lap(langley: RealLaps, calder: RealLaps) -> None:
    """The oracle's own laps are what the READMEs say: Langley's six full laps, Calder's four."""
    assert sorted(round(lap.time, 1) for lap in langley.laps) == [15.1, 15.2, 15.2, 15.2, 15.2, 15.3]
    assert isinstance(calder.laps[0], RawLap) and len(calder.laps) == 4
