"""Lap detection on real iRacing recordings and on synthetic sessions with pit exits, resets and tows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from pitbox.errors import Invalid
from pitbox.telemetry.laps import Lap, LapDetector, detect_laps

from .conftest import Columns

EXPECTED = {  # README of the recordings: full laps, in seconds (sample counts at 60 Hz)
    "14-46-23": [15.183, 15.100],
    "14-48-39": [15.167, 15.200],
    "14-50-46": [15.183, 15.283],
}


@pytest.mark.parametrize("stamp", sorted(EXPECTED))
def test_lap_times_match_iracing_recording(langley: Callable[[str], Columns], stamp: str) -> None:
    columns = langley(stamp)
    valid = [lap for lap in detect_laps(columns) if lap.valid]
    assert [lap.lap_time for lap in valid] == pytest.approx(EXPECTED[stamp], abs=0.05)
    for lap in valid:  # iRacing's own timing, which it shows about a second into the next lap
        after = np.flatnonzero(columns["t"] > lap.t_end + 2.0)[0]
        assert lap.lap_time == pytest.approx(columns["LapLastLapTime"][after], abs=0.005)
        assert sum(s for s in lap.sectors if s is not None) == pytest.approx(lap.lap_time, abs=1e-9)
        assert all(sector is not None and 4.0 < sector < 6.0 for sector in lap.sectors)
    assert [lap.number for lap in valid] == sorted({lap.number for lap in valid})


def test_out_lap_from_the_pits_is_emitted_invalid(langley: Callable[[str], Columns]) -> None:
    first = detect_laps(langley("14-46-23"))[0]
    assert first.number == 173
    assert not first.valid
    assert "started_mid_lap" in first.invalid_reasons
    assert first.sectors[0] is None


def test_pit_exit_only_gives_no_lap(langley: Callable[[str], Columns]) -> None:
    assert detect_laps(langley("14-45-12")) == []


def test_reset_does_not_make_a_lap(langley: Callable[[str], Columns]) -> None:
    columns = langley("14-50-46")
    laps = detect_laps(columns)
    assert [lap.lap_time for lap in laps if lap.valid] == pytest.approx(EXPECTED["14-50-46"], abs=0.05)
    after_reset = laps[-1]
    reset_time = columns["t"][np.flatnonzero(columns["lap"] == 0)[-1]]
    assert not after_reset.valid
    assert after_reset.t_start > reset_time  # the lap interrupted by the reset was abandoned
    assert after_reset.lap_time < 18.0


@pytest.mark.parametrize("chunk_size", [1, 7, 600])
def test_incremental_detection_equals_whole_session(
    langley: Callable[[str], Columns], chunk_size: int
) -> None:
    for stamp in ("14-46-23", "14-50-46"):
        columns = langley(stamp)
        whole = detect_laps(columns)
        detector = LapDetector()
        pieces: list[Lap] = []
        for start in range(0, len(columns["t"]), chunk_size):
            pieces += detector.feed(
                {name: values[start : start + chunk_size] for name, values in columns.items()}
            )
        pieces += detector.finish()
        assert [(lap.number, lap.valid, lap.invalid_reasons) for lap in pieces] == [
            (lap.number, lap.valid, lap.invalid_reasons) for lap in whole
        ]
        for mine, theirs in zip(pieces, whole, strict=True):
            assert mine.lap_time == pytest.approx(theirs.lap_time, abs=1e-9)


def drive(
    lap_time: float, laps: float, *, start_pct: float = 0.0, start_lap: int = 1, hz: float = 60.0
) -> Columns:
    """A car lapping at constant speed, `laps` laps from `start_pct`, sampled at `hz`."""
    t = np.arange(0.0, laps * lap_time, 1.0 / hz) + 100.0
    progress = start_pct + (t - 100.0) / lap_time
    return {"t": t, "lapDistPct": progress % 1.0, "lap": start_lap + np.floor(progress)}


def test_crossing_times_are_interpolated_between_samples() -> None:
    columns = drive(lap_time=61.237, laps=3.5, start_pct=0.4, hz=10.0)
    laps = detect_laps(columns)
    assert [lap.number for lap in laps] == [1, 2, 3]
    assert [lap.valid for lap in laps] == [False, True, True]
    assert laps[1].lap_time == pytest.approx(61.237, abs=1e-6)
    assert laps[1].t_start == pytest.approx(100.0 + 0.6 * 61.237, abs=1e-6)
    assert laps[1].sectors == pytest.approx((61.237 / 3,) * 3, abs=1e-6)


def test_lapdistpct_only_input_numbers_laps_itself() -> None:
    columns = drive(lap_time=30.0, laps=4.2, start_pct=0.9)
    del columns["lap"]
    laps = detect_laps(columns)
    assert [lap.number for lap in laps] == [0, 1, 2, 3, 4]
    assert [lap.valid for lap in laps] == [False, True, True, True, True]
    assert all(lap.lap_time == pytest.approx(30.0, abs=1e-6) for lap in laps[1:])


def test_missing_lap_values_and_missing_samples_are_tolerated() -> None:
    columns = drive(lap_time=30.0, laps=3.0, start_pct=0.5)
    columns["lap"][::3] = np.nan
    columns["lapDistPct"][5::50] = np.nan
    laps = detect_laps(columns)
    assert [lap.valid for lap in laps] == [False, True, True]
    assert laps[1].lap_time == pytest.approx(30.0, abs=1e-3)


def test_pit_exit_then_laps() -> None:
    columns = drive(lap_time=20.0, laps=2.6, start_pct=0.13)
    columns["lapDistPct"][:30] = 0.13  # parked in the pit box first
    laps = detect_laps(columns)
    assert laps[0].invalid_reasons == ("short", "started_mid_lap")
    assert laps[1].valid


def test_tow_time_gap_invalidates_the_lap() -> None:
    columns = drive(lap_time=20.0, laps=3.6, start_pct=0.5)
    keep = (columns["t"] < 135.0) | (columns["t"] > 138.0)  # three seconds of nothing in the second lap
    laps = detect_laps({name: values[keep] for name, values in columns.items()})
    assert [lap.valid for lap in laps] == [False, True, False, True]
    assert laps[2].invalid_reasons == ("time_gap",)


def test_reset_to_the_pit_box_abandons_the_lap() -> None:
    columns = drive(lap_time=20.0, laps=4.0, start_pct=0.5)
    after = columns["t"] >= 137.0  # in the third lap at 35 %, the car reappears in the pit box at 13 %
    columns["lapDistPct"][after] = (0.13 + (columns["t"][after] - 137.0) / 20.0) % 1.0
    laps = detect_laps(columns)
    assert [lap.valid for lap in laps] == [False, True, False, True]
    assert laps[2].invalid_reasons == ("short", "started_mid_lap")
    assert laps[2].t_start == pytest.approx(137.0, abs=0.02)


def test_lap_counter_going_backwards_restarts_the_lap() -> None:
    columns = drive(lap_time=20.0, laps=3.6, start_pct=0.5)
    columns["lap"][(columns["t"] > 140.0) & (columns["t"] < 140.1)] = 0
    laps = detect_laps(columns)
    assert [lap.valid for lap in laps] == [False, True, False, True]
    assert laps[2].t_start == pytest.approx(140.1, abs=0.02)


def test_splits_must_be_fractions_in_order() -> None:
    with pytest.raises(Invalid):
        LapDetector(splits=(0.6, 0.3))
    with pytest.raises(Invalid):
        detect_laps({"t": [0.0, 1.0]})


def test_custom_splits_give_one_sector_more_than_splits() -> None:
    laps = detect_laps(drive(lap_time=40.0, laps=2.5), splits=(0.25, 0.5, 0.75))
    assert laps[1].sectors == pytest.approx((10.0, 10.0, 10.0, 10.0), abs=1e-6)


def test_a_lap_timer_alone_marks_and_times_the_laps() -> None:
    """No lap position, no counter: the running lap timer's restarts are the line, to the sample's time."""
    columns = drive(lap_time=30.0, laps=3.5, start_pct=0.5, hz=20.0)
    t = columns["t"]
    timer = np.mod((t - 100.0) + 0.5 * 30.0, 30.0)
    laps = detect_laps({"t": t, "lapTime": timer, "speed": np.full(t.size, 120.0)})
    assert [lap.valid for lap in laps] == [False, True, True]
    assert [lap.lap_time for lap in laps[1:]] == pytest.approx([30.0, 30.0], abs=1e-6)
    assert laps[1].length_m == pytest.approx(1000.0, rel=1e-3)  # 120 km/h for 30 s
    assert laps[1].sectors == pytest.approx((10.0, 10.0, 10.0), abs=0.01)  # thirds of the distance


def test_a_lap_counter_alone_marks_the_laps_within_a_sample() -> None:
    columns = drive(lap_time=30.0, laps=3.5, start_pct=0.5, hz=20.0)
    laps = detect_laps({"t": columns["t"], "lap": columns["lap"]})
    assert [(lap.number, lap.valid) for lap in laps] == [(1, False), (2, True), (3, True)]
    assert [lap.lap_time for lap in laps[1:]] == pytest.approx([30.0, 30.0], abs=0.05)


def test_the_sources_own_lap_time_wins_and_a_lap_waits_for_it() -> None:
    """The game shows 30.123 s a second after the line; the samples say 30.000 s."""
    columns = drive(lap_time=30.0, laps=2.5, start_pct=0.5, hz=20.0)
    t = columns["t"]
    shown = np.where(t >= 100.0 + 45.0 + 1.0, 30.123, np.nan)  # the second lap ends at 145 s
    columns["lastLapTime"] = shown
    columns["lapTime"] = np.mod(t - 100.0 + 15.0, 30.0) + 100.0  # a timer that is never fresh: not a line
    detector = LapDetector()
    before = detector.feed({name: values[t < 145.5] for name, values in columns.items()})
    assert [lap.number for lap in before] == [1]  # lap 2 ended at 145 s and waits for the game's time
    after = detector.feed({name: values[t >= 145.5] for name, values in columns.items()})
    assert [(lap.number, lap.lap_time) for lap in after] == [(2, pytest.approx(30.123))]
    assert sum(after[0].sectors) == pytest.approx(30.123)  # the last sector closes the game's time


def test_without_the_sources_time_a_lap_goes_after_five_seconds() -> None:
    columns = drive(lap_time=30.0, laps=2.5, start_pct=0.5, hz=20.0)
    columns["lapTime"] = (
        np.mod(columns["t"] - 100.0 + 15.0, 30.0) + 100.0
    )  # the source keeps time, shows none
    t = columns["t"]
    detector = LapDetector()
    assert [lap.number for lap in detector.feed({k: v[t < 149.0] for k, v in columns.items()})] == [1]
    assert [lap.lap_time for lap in detector.feed({k: v[t >= 149.0] for k, v in columns.items()})] == [
        pytest.approx(30.0)
    ]


def test_motec_laps_come_from_its_lap_distance_dated_by_its_timer() -> None:
    """Sample1.ld: the logger notices each beacon seconds late; its lap timer dates the line, its Lap Time
    channel times the lap (the data README: 65.15 / 63.68 / 65.18 / 63.75 s)."""
    from pitbox.recordings import open_recording
    from tests.conftest import shared_data

    recording = open_recording(shared_data("motec_ld/Sample1.ld"))
    laps = detect_laps(recording.channels)
    valid = [lap for lap in laps if lap.valid]
    assert [lap.lap_time for lap in valid] == [65.15, 63.68, 65.18, 63.75]
    assert [lap.number for lap in valid] == [1, 2, 3, 4]
    assert all(lap.length_m is not None and 2200 < lap.length_m < 2300 for lap in valid)
    assert all(None not in lap.sectors for lap in valid)
