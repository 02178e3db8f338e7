"""Real iRacing recordings replayed through POST /api/telemetry: the laps stored are the recording's laps.

The expected laps are read from the files by the test (pyirsdk): crossings where LapDistPct wraps, times as
iRacing's own LapLastLapTime shows them, and the data README's lap times."""

from __future__ import annotations

import uuid

import httpx
import irsdk
import numpy as np
import pytest

from pitbox.realtime.publisher import NullPublisher
from pitbox.recordings import open_recording
from pitbox.telemetry.writer import TelemetryWriter
from tests.conftest import RunningServer, Team, shared_data
from tests.telemetry.conftest import new_session, post_batches

LANGLEY = "iracing_ibt/robrobertsce/skmodified_langley 2015-05-28 {}.ibt"
EXPECTED = {"14-46-23": [15.183, 15.100], "14-48-39": [15.167, 15.200]}  # the recordings' README


def iracing_own(stamp: str) -> dict[str, np.ndarray]:
    """SessionTime (from the file's first sample), LapDistPct, Lap and LapLastLapTime as pyirsdk reads them."""
    ibt = irsdk.IBT()
    ibt.open(str(shared_data(LANGLEY.format(stamp))))
    try:
        own = {
            name: np.asarray(ibt.get_all(name), dtype=float) for name in ("SessionTime", "LapDistPct", "Lap")
        }
        own["LapLastLapTime"] = np.asarray(ibt.get_all("LapLastLapTime"), dtype=float)
    finally:
        ibt.close()
    own["t"] = own["SessionTime"] - own["SessionTime"][0]
    return own


def line_crossings(own: dict[str, np.ndarray]) -> list[float]:
    """Where LapDistPct wraps, interpolated between the two samples around the line."""
    t, pct = own["t"], own["LapDistPct"]
    wraps = np.flatnonzero((pct[:-1] > 0.9) & (pct[1:] < 0.1))
    fraction = np.clip((1 - pct[wraps]) / (pct[wraps + 1] + 1 - pct[wraps]), 0, 1)
    return list(t[wraps] + fraction * (t[wraps + 1] - t[wraps]))


@pytest.mark.parametrize("stamp", sorted(EXPECTED))
async def test_laps_of_a_replayed_recording_match_the_recording(
    client: httpx.AsyncClient, team: Team, stamp: str
) -> None:
    recording = open_recording(shared_data(LANGLEY.format(stamp)))
    session_id = await new_session(client, team.driver, sim="iracing", car=recording.car)
    rows = [sample for chunk in recording.iter_samples(600) for sample in chunk]
    assert team.driver.driver_id is not None
    await post_batches(client, team.driver.headers, team.driver.driver_id, session_id, rows)

    laps = (await client.get(f"/api/sessions/{session_id}/laps", headers=team.driver.headers)).json()
    valid = [lap for lap in laps if lap["valid"]]
    assert [lap["lapTime"] for lap in valid] == pytest.approx(EXPECTED[stamp], abs=0.05)
    own = iracing_own(stamp)
    t, last_lap_time = own["t"], own["LapLastLapTime"]
    for lap in valid:  # iRacing's own timing of the lap, shown a moment into the next one
        after = np.flatnonzero(t > lap["tEnd"] + 2.0)[0]
        assert lap["lapTime"] == pytest.approx(last_lap_time[after], abs=0.005)
        assert len(lap["sectors"]) == 3 and sum(lap["sectors"]) == pytest.approx(lap["lapTime"], abs=1e-9)
    assert [lap["tEnd"] for lap in laps] == pytest.approx(line_crossings(own), abs=1e-6)
    assert "started_mid_lap" in laps[0]["invalidReasons"]  # the out-lap from the pits


async def test_laps_survive_a_restart_between_batches_including_a_reset(
    client: httpx.AsyncClient, server: RunningServer, team: Team
) -> None:
    """Half the batches reach this server, half a fresh service (as after a restart, or another instance)."""
    recording = open_recording(shared_data(LANGLEY.format("14-50-46")))
    session_id = await new_session(client, team.driver, sim="iracing")
    batches = list(recording.iter_samples(300))
    half = len(batches) // 2
    assert team.driver.driver_id is not None
    await post_batches(
        client,
        team.driver.headers,
        team.driver.driver_id,
        session_id,
        [s for b in batches[:half] for s in b],
        300,
    )
    services = server.services
    restarted = TelemetryWriter(services.database.pool, services.access, NullPublisher())
    principal = await services.credentials.authenticate(team.driver.token)
    for seq, samples in enumerate(batches[half:], start=half):
        message = {"driverId": team.driver.driver_id, "sessionId": session_id, "seq": seq, "samples": samples}
        assert not (await restarted.ingest_message(principal, message))["duplicate"]

    stored = await services.database.pool.fetch(
        "SELECT lap_number, t_end, lap_time_s, valid FROM laps WHERE session_id = $1 ORDER BY t_start",
        uuid.UUID(session_id),
    )
    # The README: out-lap 183, full laps 184 and 185 (15.183, 15.283 s), then a reset (Lap 186 -> 0 -> 186)
    # that abandons lap 186; the car then reaches the line once more from the pit box.
    assert [(row["lap_number"], row["valid"]) for row in stored] == [
        (183, False),
        (184, True),
        (185, True),
        (186, False),
    ]
    own = iracing_own("14-50-46")
    assert [row["t_end"] for row in stored] == pytest.approx(line_crossings(own), abs=1e-6)
    shown = own["LapLastLapTime"]
    for row in stored[1:3]:
        after = np.flatnonzero(own["t"] > row["t_end"] + 2.0)[0]
        assert row["lap_time_s"] == pytest.approx(shown[after], abs=1e-6)  # iRacing's own time, as given
