"""Lap-versus-lap comparison on lap distance, on real laps and on laps whose answer is known."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from pitbox.telemetry.compare import compare_laps, delta_at_finish, lap_samples
from pitbox.telemetry.laps import detect_laps

from .conftest import Columns


def valid_laps(columns: Columns) -> list[Columns]:
    """The laps to compare, cut by lap detection (only the input: the expected values come from the file)."""
    return [lap_samples(columns, lap) for lap in detect_laps(columns) if lap.valid]


def own_lap_time(columns: Columns, lap: Columns) -> float:
    """The time iRacing itself gave the lap: the new LapLastLapTime shown within 3 s after its last sample."""
    t, shown = columns["t"], columns["LapLastLapTime"]
    end = float(lap["t"][-1])
    before = shown[t < end][-1]
    after = shown[(t >= end) & (t < end + 3.0)]
    return float(after[after != before][0])


def test_delta_at_finish_equals_the_lap_time_difference_on_real_laps(
    langley: Callable[[str], Columns],
) -> None:
    sessions = [langley("14-46-23"), langley("14-48-39")]
    laps = [(columns, lap) for columns in sessions for lap in valid_laps(columns)]
    assert len(laps) == 4
    first = laps[0][1]
    first_time = own_lap_time(*laps[0])
    for columns, lap_b in laps[1:]:
        expected = own_lap_time(columns, lap_b) - first_time
        assert delta_at_finish(first, lap_b) == pytest.approx(expected, abs=0.02)
        comparison = compare_laps(first, lap_b)
        assert comparison.delta[-1] == pytest.approx(expected, abs=0.02)
        assert comparison.delta[0] == pytest.approx(0.0, abs=0.02)


def test_comparison_grid_covers_the_lap_every_two_metres(langley: Callable[[str], Columns]) -> None:
    lap_a, lap_b = valid_laps(langley("14-46-23"))
    comparison = compare_laps(lap_a, lap_b, channels=("speed", "gear", "throttle", "unknownChannel"))
    assert comparison.track_length == pytest.approx(576.3, abs=1.0)
    assert comparison.distance[0] == 0.0 and comparison.distance[-1] == comparison.track_length
    assert np.diff(comparison.distance).max() <= 2.0 + 1e-9
    assert set(comparison.a) == set(comparison.b) == {"speed", "gear", "throttle"}
    assert comparison.a["speed"].shape == comparison.distance.shape
    assert set(np.unique(comparison.a["gear"])) <= set(np.unique(lap_a["gear"]))
    assert 100.0 < np.nanmean(comparison.b["speed"]) < 200.0


def test_lap_distance_alone_and_fraction_alone_agree(langley: Callable[[str], Columns]) -> None:
    lap_a, lap_b = valid_laps(langley("14-46-23"))
    on_fraction = delta_at_finish(
        {k: v for k, v in lap_a.items() if k != "lapDist"}, {k: v for k, v in lap_b.items() if k != "lapDist"}
    )
    on_metres = delta_at_finish(
        {k: v for k, v in lap_a.items() if k != "lapDistPct"},
        {k: v for k, v in lap_b.items() if k != "lapDistPct"},
        track_length=576.3,
    )
    assert on_fraction == pytest.approx(on_metres, abs=0.02)


def synthetic_lap(lap_time: float, *, slow_from: float = 1.0, slow_by: float = 1.0) -> Columns:
    """A lap line to line (one sample past each end) on a 1 km track, slower by `slow_by` after `slow_from`."""
    pct = np.linspace(-0.001, 1.001, 2003)
    pace = np.where(pct > slow_from, slow_by, 1.0)
    t = 500.0 + np.concatenate(([0.0], np.cumsum(np.diff(pct) * pace[1:]))) * lap_time
    t -= np.interp(0.0, pct, t) - 500.0
    return {
        "t": t,
        "lapDistPct": pct % 1.0,
        "lapDist": (pct % 1.0) * 1000.0,
        "speed": np.full(pct.size, 180.0),
    }


def test_running_delta_grows_where_lap_b_loses_time() -> None:
    lap_a = synthetic_lap(60.0)
    lap_b = synthetic_lap(60.0, slow_from=0.5, slow_by=1.1)
    comparison = compare_laps(lap_a, lap_b, points=101)
    assert comparison.track_length == pytest.approx(1000.0)
    assert np.abs(comparison.delta[:50]).max() < 1e-6
    assert comparison.delta[75] == pytest.approx(0.25 * 60.0 * 0.1, abs=1e-3)
    assert comparison.delta[-1] == pytest.approx(3.0, abs=1e-3)


def test_identical_laps_have_no_delta() -> None:
    lap = synthetic_lap(45.0)
    assert np.abs(compare_laps(lap, lap, step=5.0).delta).max() < 1e-9
