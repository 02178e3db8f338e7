"""CSV recordings: the documented layout, round trips, aliases and unknown columns."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pitbox.errors import Invalid
from pitbox.recordings import Recording, open_recording, read_csv, write_csv


def small_recording() -> Recording:
    return Recording(
        source="csv",
        sample_rate_hz=10.0,
        channels={
            "t": np.array([0.0, 0.1, 0.2]),
            "lap": np.array([1, 1, 2]),
            "speed": np.array([150.5, math.nan, 151.25]),
            "myCustomSensor": np.array([17, 18, 19]),
        },
    )


def test_a_recording_survives_a_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lap.csv"
    write_csv(small_recording(), path)
    again = open_recording(path)
    assert list(again.channels) == ["t", "lap", "speed", "myCustomSensor"]
    assert np.allclose(again.channels["t"], [0.0, 0.1, 0.2])
    assert again.channels["lap"].tolist() == [1, 1, 2]
    assert np.isnan(again.channels["speed"][1]) and again.channels["speed"][2] == 151.25
    assert again.channels["myCustomSensor"].dtype == np.int64
    assert again.n_samples == 3 and np.isclose(again.sample_rate_hz, 10.0)
    assert next(again.iter_samples())[1] == {"t": 0.1, "lap": 1, "myCustomSensor": 18}


def test_a_real_recording_survives_a_csv_round_trip(data_dir: Path, tmp_path: Path) -> None:
    original = open_recording(data_dir / "iracing_ibt/robrobertsce/sk.ibt")
    path = tmp_path / "sk.csv"
    write_csv(original, path)
    again = read_csv(path)
    assert list(again.channels) == list(original.channels)
    for name, values in original.channels.items():
        assert np.allclose(again.channels[name], values, equal_nan=True), name


def test_alias_columns_are_renamed_and_unknown_columns_kept(tmp_path: Path) -> None:
    path = tmp_path / "aliases.csv"
    path.write_text("SessionTime,Speed,RPM,Gear,Wing Angle\n10.0,42.5,5000,3,12.5\n10.5,43.0,5100,3,\n")
    recording = read_csv(path, source="iracing")
    assert list(recording.channels) == ["t", "speed", "rpm", "gear", "Wing Angle"]
    assert recording.channels["t"].tolist() == [0.0, 0.5]  # shifted to start at 0
    assert recording.channels["speed"].tolist() == [42.5, 43.0]  # renamed, not converted
    assert recording.channels["gear"].dtype == np.int64
    assert "Wing Angle" not in next(recording.iter_samples())[1]


def test_a_csv_without_a_time_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "no_time.csv"
    path.write_text("speed,rpm\n100,5000\n")
    with pytest.raises(Invalid, match="`t`"):
        open_recording(path)


def test_a_csv_with_text_in_a_number_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "text.csv"
    path.write_text("t,speed\n0.0,fast\n")
    with pytest.raises(Invalid, match="not a number"):
        open_recording(path)


def test_a_csv_of_a_logger_without_lap_fraction_gets_its_laps(data_dir: Path, tmp_path: Path) -> None:
    """MoTeC's Sample1 written as CSV (lap distance, timer, counter and lap time, no lapDistPct) and read
    back: its four timed laps, as the logger timed them (the data README: 65.15 / 63.68 / 65.18 / 63.75 s)."""
    from pitbox.telemetry.laps import detect_laps

    original = open_recording(data_dir / "motec_ld/Sample1.ld")
    keep = ("t", "lap", "lapDist", "lapTime", "lastLapTime", "speed", "throttle", "brakePressure")
    path = tmp_path / "calder.csv"
    write_csv(Recording("motec", 20.0, {name: original.channels[name] for name in keep}), path)
    laps = [lap for lap in detect_laps(read_csv(path).channels) if lap.valid]
    assert [lap.lap_time for lap in laps] == pytest.approx([65.15, 63.68, 65.18, 63.75], abs=1e-9)
