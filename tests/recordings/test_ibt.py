"""iRacing .ibt files read into canonical recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pitbox.errors import Invalid
from pitbox.recordings import open_recording, read_ibt

pytestmark = pytest.mark.data

LANGLEY = "iracing_ibt/robrobertsce/skmodified_langley 2015-05-28 {}.ibt"


@pytest.mark.parametrize(
    ("name", "samples"),
    [
        (LANGLEY.format("14-46-23"), 3578),
        (LANGLEY.format("14-48-39"), 3244),
        (LANGLEY.format("14-50-46"), 5476),
        (LANGLEY.format("14-45-12"), 418),
        ("iracing_ibt/robrobertsce/sk.ibt", 201),
    ],
)
def test_every_recorded_sample_is_read(data_dir: Path, name: str, samples: int) -> None:
    recording = open_recording(data_dir / name)
    assert recording.source == "iracing"
    assert recording.n_samples == samples
    assert all(len(values) == samples for values in recording.channels.values())
    assert recording.sample_rate_hz == 60.0


def test_channels_get_canonical_names_and_units(data_dir: Path) -> None:
    recording = read_ibt(data_dir / LANGLEY.format("14-46-23"))
    channels = recording.channels
    for canonical in (
        "t",
        "lap",
        "lapDistPct",
        "speed",
        "rpm",
        "gear",
        "throttle",
        "brake",
        "clutch",
        "steering",
        "lat",
        "lon",
        "gLat",
        "fuel",
        "tyreTempFL",
        "tyrePressureRR",
    ):
        assert canonical in channels, canonical
    assert "Speed" not in channels and "SessionTime" not in channels
    # An SK Modified at Langley tops out around 100 mph: the m/s of the file became km/h.
    assert 150 < float(np.max(channels["speed"])) < 170
    assert channels["t"][0] == 0.0
    assert np.isclose(channels["t"][-1], 59.65, atol=0.02)
    assert np.all(np.diff(channels["t"]) > 0)
    assert channels["gear"].dtype == np.int64 and channels["lap"].dtype == np.int64
    # An oval turning left: the wheel is mostly turned left (positive) and the car pulled left (positive g).
    fast = channels["speed"] > 100
    assert np.mean(channels["steering"][fast]) > 0 and np.mean(channels["gLat"][fast]) > 1.0
    # iRacing reports the clutch as engagement; canonical clutch is the pedal, released while driving.
    assert np.mean(channels["clutch"][fast]) < 0.05


def test_lap_numbers_and_last_lap_times_are_present(data_dir: Path) -> None:
    channels = read_ibt(data_dir / LANGLEY.format("14-46-23")).channels
    laps = channels["lap"]
    assert len(np.unique(laps)) >= 3
    assert np.all(np.diff(laps[laps > 0]) >= 0)
    last_laps = np.unique(np.round(channels["lastLapTime"][np.isfinite(channels["lastLapTime"])], 2))
    assert np.allclose(sorted(last_laps), [15.10, 15.19], atol=0.01)


def test_unknown_channels_are_kept_under_their_own_names(data_dir: Path) -> None:
    channels = read_ibt(data_dir / LANGLEY.format("14-46-23")).channels
    assert "RRshockDefl" in channels and "LFtempCL" in channels
    assert len(channels) == 143


def test_track_and_car_come_from_the_session_info(data_dir: Path) -> None:
    recording = read_ibt(data_dir / LANGLEY.format("14-46-23"))
    assert recording.track == "Langley Speedway"
    assert recording.car is not None and "SK" in recording.car


def test_samples_are_json_safe_and_missing_values_are_left_out(data_dir: Path) -> None:
    recording = read_ibt(data_dir / LANGLEY.format("14-46-23"))
    batches = list(recording.iter_samples(batch_size=1000))
    assert [len(batch) for batch in batches] == [1000, 1000, 1000, 578]
    first = batches[0][0]
    assert "lastLapTime" not in first  # -1 in the file: no lap completed yet
    assert "lat" not in first  # 0, 0 in the first sample of the file
    json.dumps(batches[0], allow_nan=False)
    assert isinstance(first["lap"], int) and isinstance(first["speed"], float)


def test_modern_file_maps_drs_and_ers(data_dir: Path) -> None:
    recording = read_ibt(data_dir / "iracing_ibt/teamjorge/valid_test_file.ibt")
    assert recording.n_samples == 390
    assert set(np.unique(recording.channels["drs"])) <= {0, 1}
    assert 3.9e6 < float(np.max(recording.channels["ers"])) <= 4.0e6  # joules
    assert recording.track == "Red Bull Ring"


def test_corrupt_ibt_is_refused_with_a_clear_message(data_dir: Path) -> None:
    with pytest.raises(Invalid, match="not a readable iRacing .ibt file"):
        open_recording(data_dir / "iracing_ibt/teamjorge/invalid_test_file.ibt")


def test_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ibt"
    empty.write_bytes(b"")
    with pytest.raises(Invalid):
        open_recording(empty)
