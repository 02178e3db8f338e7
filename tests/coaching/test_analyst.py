"""The built-in analyst on real laps read by the test itself: what it says is what the samples show.

Laps, their times and every expected number come from tests/coaching/conftest.py (pyirsdk, a MoTeC reader and
numpy written for the tests), or are written here; nothing of ours cuts, times or measures the laps checked.
"""

from __future__ import annotations

import numpy as np
import pytest

from pitbox.coaching.analyst import analyse_lap
from pitbox.coaching.models import Analysis

from .conftest import Columns, RawLap, RealLaps, check_item, delta_growth, position


def analysed(lap: RawLap, reference: RawLap, length: float, **options: object) -> Analysis:
    return analyse_lap(
        lap.columns,
        reference.columns,
        lap_number=lap.number,
        lap_time=lap.time,
        reference_time=reference.time,
        track_length=length,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("track", ["langley", "calder"])
def test_every_item_is_true_to_the_samples(track: str, request: pytest.FixtureRequest) -> None:
    """Each item's time is the delta's growth over its range; each point and speed it cites is in the data."""
    real: RealLaps = request.getfixturevalue(track)
    items = 0
    for reference in real.laps:
        for lap in real.laps:
            if lap is reference:
                continue
            for item in analysed(lap, reference, real.length).items:
                check_item(item.to_json(), lap, reference, real.length)
                items += 1
    assert items >= 10


@pytest.mark.parametrize("track", ["langley", "calder"])
def test_corner_losses_add_up_to_the_difference_of_the_lap_times(
    track: str, request: pytest.FixtureRequest
) -> None:
    real: RealLaps = request.getfixturevalue(track)
    for lap in real.others:
        analysis = analysed(lap, real.best, real.length)
        # Line to line, the delta is the difference of the recording's own lap times (MoTeC rounds to 0.01 s).
        assert analysis.delta == pytest.approx(lap.time - real.best.time, abs=0.025)
        assert sum(result.time_lost for result in analysis.corners) == pytest.approx(analysis.delta, abs=1e-6)


def test_motec_lap_three_is_one_and_a_half_seconds_behind_lap_two(calder: RealLaps) -> None:
    analysis = analysed(calder.lap(3), calder.lap(2), calder.length)
    assert analysis.delta == pytest.approx(65.18 - 63.68, abs=0.05)
    assert analysis.summary.startswith("Lap 3: 65.180 s, +1.51 s to your best lap (63.680 s).")
    assert analysis.improvements


def stretched(
    lap: RawLap, length: float, pieces: list[tuple[float, float, float]]
) -> tuple[RawLap, list[float]]:
    """The lap driven `factor` times slower (or faster) over each (start m, end m, factor); the seconds added."""
    metres = position(lap.columns, length)
    dt = np.diff(lap.columns["t"])
    scale = np.ones(dt.size)
    added = []
    for start, end, factor in pieces:
        inside = (metres[1:] > start) & (metres[1:] <= end)
        scale[inside] = factor
        added.append(float(dt[inside].sum() * (factor - 1.0)))
    t = lap.columns["t"][0] + np.concatenate(([0.0], np.cumsum(dt * scale)))
    start_at = float(np.interp(0.0, metres, t))
    end_at = float(np.interp(length, metres, t))
    columns: Columns = {**lap.columns, "t": t}
    return RawLap(lap.number, end_at - start_at, start_at, end_at, columns), added


def test_time_lost_in_one_corner_is_named_there_with_its_size(calder: RealLaps) -> None:
    reference = calder.best
    length = calder.length
    corners = analysed(reference, reference, length).corners
    target = max(corners, key=lambda result: (result.corner.end - result.corner.start) % length)
    apex = target.corner.apex
    lap, added = stretched(reference, length, [(apex - 40.0, apex + 40.0, 1.08)])
    analysis = analysed(lap, reference, length)
    assert len(analysis.improvements) >= 1 and not analysis.strengths
    assert {item.corner for item in analysis.improvements} == {target.corner.name}
    assert sum(item.time_lost for item in analysis.improvements) == pytest.approx(added[0], abs=0.01)


def test_a_loss_won_back_inside_the_corner_is_still_reported(calder: RealLaps) -> None:
    """0.15 s lost before the apex and won back after it: the corner's total is nil, its entry is not."""
    reference = calder.best
    length = calder.length
    target = analysed(reference, reference, length).corners[0]
    corner = target.corner
    entry_start = corner.apex - 0.9 * ((corner.apex - corner.start) % length)
    exit_end = corner.apex + 0.9 * ((corner.end - corner.apex) % length)
    slow = 1.0
    for _ in range(20):  # find the factors that add 0.15 s on the way in and take it off on the way out
        _, added = stretched(reference, length, [(entry_start, corner.apex, slow)])
        slow = 1.0 + (slow - 1.0) * 0.15 / added[0] if added[0] else 1.05
    _, plain = stretched(reference, length, [(corner.apex, exit_end, 0.9)])
    fast = 1.0 - 0.1 * 0.15 / -plain[0]
    lap, added = stretched(
        reference, length, [(entry_start, corner.apex, slow), (corner.apex, exit_end, fast)]
    )
    assert added[0] == pytest.approx(0.15, abs=0.005) and added[1] == pytest.approx(-0.15, abs=0.005)
    analysis = analysed(lap, reference, length)
    entries = [item for item in analysis.improvements if item.corner == corner.name and item.phase == "entry"]
    assert len(entries) == 1 and entries[0].time_lost == pytest.approx(0.15, abs=0.01)
    assert entries[0].text.startswith(f"{corner.name} entry: ") and "0.15 s" in entries[0].text
    assert not [item for item in analysis.strengths if item.corner == corner.name], "not better on both"


def test_a_loss_no_measure_explains_names_the_channels_that_differ_most(calder: RealLaps) -> None:
    """Time lost on a stretch where braking, speeds, throttle and gear are the same: no invented cause."""
    reference = calder.best
    length = calder.length
    result = analysed(reference, reference, length).corners[1]
    start, end = result.corner.apex + 10.0, result.corner.apex + 30.0
    lap, added = stretched(reference, length, [(start, end, 1.25)])
    analysis = analysed(lap, reference, length)
    (item,) = [item for item in analysis.improvements if item.corner == result.corner.name]
    assert item.time_lost == pytest.approx(added[0], abs=0.01)
    assert item.cause is not None and item.cause.kind == "channel_difference"
    assert "no measure explains it" in item.text and "braked" not in item.text and "line" not in item.text


def test_the_line_is_spoken_of_only_with_position_data(langley: RealLaps) -> None:
    with_gps = [analysed(lap, langley.best, langley.length) for lap in langley.others]
    assert any(
        cause.kind == "line" for analysis in with_gps for item in analysis.items for cause in item.causes
    )
    for lap in langley.others:
        blind = [
            RawLap(
                one.number,
                one.time,
                one.t_start,
                one.t_end,
                {k: v for k, v in one.columns.items() if k not in ("lat", "lon")},
            )
            for one in (lap, langley.best)
        ]
        analysis = analysed(blind[0], blind[1], langley.length)
        assert all(cause.kind != "line" for item in analysis.items for cause in item.causes)
        assert all(" line" not in item.text for item in analysis.items)


@pytest.mark.parametrize("track", ["langley", "calder"])
def test_keep_it_only_where_the_lap_was_better_on_the_way_in_and_out(
    track: str, request: pytest.FixtureRequest
) -> None:
    real: RealLaps = request.getfixturevalue(track)
    praised = 0
    for reference in real.laps:
        for lap in real.laps:
            if lap is reference:
                continue
            for item in analysed(lap, reference, real.length).strengths:
                praised += 1
                corner = item.evidence
                entry = delta_growth(lap, reference, real.length, corner["from"], corner["apex"])
                exit_ = delta_growth(lap, reference, real.length, corner["apex"], corner["to"])
                assert entry < 0.005 and exit_ < 0.005, item.text
                assert item.text.endswith("Keep it.") and item.causes
    assert praised >= 1


def test_a_new_best_says_so_and_names_the_previous_best(langley: RealLaps) -> None:
    slower, faster = langley.lap(174), langley.lap(175)
    analysis = analysed(
        faster, slower, langley.length, reference_label="your previous best lap", new_best=True
    )
    assert analysis.summary.startswith(
        f"Lap 175: {faster.time:.3f} s, a new best, {slower.time - faster.time:.2f} s faster than your previous"
        f" best lap ({slower.time:.3f} s)."
    )


def test_a_lap_against_itself_gets_no_coaching(langley: RealLaps) -> None:
    best = langley.best
    analysis = analysed(best, best, langley.length)
    assert analysis.items == []
    assert analysis.delta == pytest.approx(0.0, abs=1e-9)
    assert "No corner stands out" in analysis.summary


def test_an_invalid_lap_is_met_with_silence(langley: RealLaps) -> None:
    analysis = analysed(
        langley.others[0], langley.best, langley.length, lap_valid=False, invalid_reasons=("time_gap",)
    )
    assert analysis.items == [] and analysis.corners == []
    assert analysis.silent_reason == "lap not valid (time_gap)"


def test_an_incomplete_lap_is_met_with_silence(langley: RealLaps) -> None:
    lap = langley.others[0]
    half = RawLap(
        lap.number, lap.time, lap.t_start, lap.t_end, {k: v[: v.size // 2] for k, v in lap.columns.items()}
    )
    analysis = analysed(half, langley.best, langley.length)
    assert analysis.items == []
    assert analysis.silent_reason == "lap is incomplete"


def test_corners_are_found_from_the_reference_speed(langley: RealLaps, calder: RealLaps) -> None:
    oval = analysed(langley.best, langley.best, langley.length).corners
    assert [result.corner.name for result in oval] == ["Turn 1", "Turn 2"]  # an oval: two turns
    road = analysed(calder.best, calder.best, calder.length).corners
    assert len(road) >= 4
    for result in road:
        assert result.reference.min_speed < result.reference.exit_speed
        assert result.reference.brake_point is not None  # Sample1 brakes by line pressure


def test_a_lift_before_the_corner_stretch_is_measured_like_any_other() -> None:
    """A smooth made-up lap that lifts early in a long entry: two equal laps, so nothing to say and no delta."""
    length, lap_time, hz = 1000.0, 20.0, 60.0
    t = np.arange(-0.5, lap_time + 0.5, 1.0 / hz)
    pct = t / lap_time
    columns: Columns = {
        "t": t,
        "lapDistPct": np.mod(pct, 1.0),
        "speed": 150 + 50 * np.sin(2 * np.pi * pct),
        "throttle": 0.5 + 0.5 * np.cos(2 * np.pi * pct),
        "brake": np.clip(-np.cos(2 * np.pi * pct), 0, 1),
        "gear": np.clip(np.round((150 + 50 * np.sin(2 * np.pi * pct)) / 40), 1, 6),
    }
    lap = RawLap(1, lap_time, 0.0, lap_time, columns)
    analysis = analysed(lap, lap, length)
    assert analysis.silent_reason is None and analysis.items == []
    assert len(analysis.corners) == 1 and analysis.corners[0].reference.lift_point is not None
    assert analysis.delta == pytest.approx(0.0, abs=1e-9)
