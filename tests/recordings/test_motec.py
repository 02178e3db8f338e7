"""MoTeC .ld logs read by our own reader, checked against MoTeC's Sample1.ld."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pitbox.errors import Invalid
from pitbox.recordings import Recording, open_recording, read_motec_ld

pytestmark = pytest.mark.data

OFFICIAL_LAP_TIMES = [65.15, 63.68, 65.18, 63.75]


@pytest.fixture(scope="module")
def sample(data_dir: Path) -> Recording:
    return open_recording(data_dir / "motec_ld" / "Sample1.ld")


def test_all_channels_are_read_onto_one_time_base(sample: Recording) -> None:
    assert sample.source == "motec"
    assert len(sample.channels) == 78 + 1  # every logged channel, plus t
    assert sample.sample_rate_hz == 20.0  # the rate most channels share
    assert np.isclose(sample.duration_s, 454.0, atol=0.1)
    assert np.allclose(np.diff(sample.channels["t"]), 0.05)
    assert sample.metadata["native_rates_hz"] == "1.0,2.0,5.0,10.0,20.0,50.0,100.0"
    assert (sample.track, sample.car) == ("Calder", "11A")
    assert sample.metadata["date"] == "23/11/2005" and sample.metadata["comment"] == "second warmup"


def test_common_channels_get_canonical_names_and_plausible_values(sample: Recording) -> None:
    channels = sample.channels
    assert 240 < float(np.max(channels["speed"])) < 250  # Ground Speed, km/h
    assert 6500 < float(np.max(channels["rpm"])) < 7000
    assert 0.99 <= float(np.max(channels["throttle"])) <= 1.0  # Throttle Pos % became a fraction
    assert set(np.unique(channels["gear"])) <= set(range(0, 7))
    assert float(np.max(np.abs(channels["steering"]))) < 1.0  # Steered Angle degrees became radians
    assert 1.4 < float(np.max(np.abs(channels["gLat"]))) < 1.7
    assert "Wheel Speed FL" in channels and "Susp Pos RR" in channels  # unknown channels kept


def test_lap_times_match_the_official_ones(sample: Recording) -> None:
    channels = sample.channels
    laps, t = channels["lap"], channels["t"]
    assert list(np.unique(laps)) == [0, 1, 2, 3, 4]
    lap_changes = np.flatnonzero(np.diff(laps)) + 1
    last_lap_times = [float(channels["lastLapTime"][index]) for index in lap_changes]
    assert np.allclose(last_lap_times, OFFICIAL_LAP_TIMES, atol=0.05)
    # The time base agrees: each lap starts at t - running lap time; consecutive starts are the lap times.
    running = channels["lapTime"]
    starts = [float(np.median((t - running)[(laps == lap) & (running > 0)])) for lap in range(5)]
    assert np.allclose(np.diff(starts), OFFICIAL_LAP_TIMES, atol=0.05)


def test_an_acc_export_names_its_car_in_the_event_blocks_not_the_header(data_dir: Path) -> None:
    # ACC leaves the header's vehicle field empty; its vehicle block (event -> venue -> vehicle) says
    # "R8 LMS EVO", the car the data README names (Audi R8 LMS Evo at Kyalami).
    recording = open_recording(data_dir / "motec_ld" / "acc_kyalami_audi_r8_lms_evo.ld")
    assert (recording.track, recording.car) == ("Kyalami", "R8 LMS EVO")


def test_a_faster_time_base_can_be_asked_for(data_dir: Path) -> None:
    recording = read_motec_ld(data_dir / "motec_ld" / "Sample1.ld", sample_rate_hz=100.0)
    assert recording.n_samples == 45400


def test_a_file_without_the_marker_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.ld"
    bogus.write_bytes(b"\x00" * 4096)
    with pytest.raises(Invalid, match="not a MoTeC"):
        open_recording(bogus)
