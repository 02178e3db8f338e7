"""Assetto Corsa RTCarInfo UDP captures read into canonical recordings."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pitbox.errors import Invalid
from pitbox.recordings import Recording, open_recording

pytestmark = pytest.mark.data

CAPTURE = "udp_captures_vthinsel/AssettoCorsa_monza_A8LMS.raw"


@pytest.fixture(scope="module")
def monza(data_dir: Path) -> Recording:
    return open_recording(data_dir / CAPTURE)


def test_every_packet_becomes_a_sample(monza: Recording) -> None:
    assert monza.source == "assetto_corsa"
    assert monza.n_samples == 8641
    assert np.isclose(monza.duration_s, 148.7, atol=0.1)
    assert 55 < monza.sample_rate_hz < 61
    assert np.all(np.diff(monza.channels["t"]) >= 0)


def test_lap_count_goes_from_0_to_1_at_packet_7899(monza: Recording) -> None:
    laps = monza.channels["lap"]
    assert np.flatnonzero(np.diff(laps)).tolist() == [7898]
    assert laps[7898] == 0 and laps[7899] == 1
    position = monza.channels["lapDistPct"]
    assert float(position.min()) >= 0.0 and float(position.max()) <= 1.0
    # The position wraps one packet before the counter moves.
    assert position[7897] > 0.99 and position[7898] < 0.01 and position[7899] < 0.01


def test_values_are_in_canonical_units(monza: Recording) -> None:
    channels = monza.channels
    assert 240 < float(np.max(channels["speed"])) < 260  # an R8 LMS on Monza's straights
    assert set(np.unique(channels["gear"])) <= set(range(-1, 7))
    assert channels["gear"][0] == 1  # AC's 2 (first gear) shifted by one
    full_throttle = (channels["throttle"] > 0.99) & (channels["speed"] > 100)
    assert np.all(channels["clutch"][full_throttle] == 0.0)  # pedal released, though AC reports 1 (engaged)
    assert float(np.max(np.abs(channels["steering"]))) < 2 * np.pi  # degrees became radians
    assert {"x", "y", "z"} <= set(channels)
    assert "wheelAngularSpeed[0]" in channels  # unknown channels kept
    assert set(np.unique(channels["inPit"])) == {0, 1}  # isInPit: the pit exit, then on track
    assert not np.isfinite(channels["lastLapTime"][0])  # 0 ms means no lap completed yet


def test_a_capture_without_its_timing_file_is_refused(data_dir: Path, tmp_path: Path) -> None:
    lonely = tmp_path / "capture.raw"
    shutil.copyfile(data_dir / CAPTURE, lonely)
    with pytest.raises(Invalid, match="timing file"):
        open_recording(lonely)
