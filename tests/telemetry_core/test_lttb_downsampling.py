"""LTTB downsampling: the same points as the textbook algorithm, NaN-free, whole when short."""

from __future__ import annotations

import numpy as np
import pytest

from pitbox.errors import Invalid
from pitbox.telemetry.downsample import downsample_columns, downsample_trace, lttb_indices


def reference_lttb(x: list[float], y: list[float], points: int) -> list[int]:
    """Steinarsson's algorithm as published, one bucket at a time."""
    size = (len(x) - 2) / (points - 2)
    kept, a = [0], 0
    for bucket in range(points - 2):
        start, stop = int(bucket * size) + 1, int((bucket + 1) * size) + 1
        next_start, next_stop = stop, min(int((bucket + 2) * size) + 1, len(x))
        avg_x = sum(x[next_start:next_stop]) / (next_stop - next_start)
        avg_y = sum(y[next_start:next_stop]) / (next_stop - next_start)
        areas = [
            abs((x[a] - avg_x) * (y[i] - y[a]) - (x[a] - x[i]) * (avg_y - y[a])) for i in range(start, stop)
        ]
        a = start + int(np.argmax(areas))
        kept.append(a)
    kept.append(len(x) - 1)
    return kept


def test_lttb_keeps_the_same_points_as_the_reference_algorithm() -> None:
    rng = np.random.default_rng(3)
    x = 4000.0 + np.arange(5000) / 60.0  # evenly sampled, as telemetry is
    y = np.sin(x) * 50 + rng.normal(0, 3, x.size)
    kept = lttb_indices(x, y, 400)
    assert kept.tolist() == reference_lttb(x.tolist(), y.tolist(), 400)


def test_missing_samples_are_never_kept() -> None:
    x = np.arange(2000, dtype=np.float64) / 60
    y = np.cos(x * 3)
    y[100:400] = np.nan
    kept = lttb_indices(x, y, 150)
    assert kept.size == 150
    assert not np.isnan(y[kept]).any()
    assert np.all(np.diff(kept) > 0)
    assert kept[0] == 0 and kept[-1] == x.size - 1


def test_trace_no_longer_than_the_target_is_returned_whole() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([5.0, np.nan, 7.0, 8.0])
    kept_x, kept_y = downsample_trace(x, y, 10)
    np.testing.assert_array_equal(kept_x, [0.0, 2.0, 3.0])
    np.testing.assert_array_equal(kept_y, [5.0, 7.0, 8.0])


def test_columns_are_downsampled_each_on_its_own() -> None:
    t = np.arange(3000, dtype=np.float64) / 60
    columns = {"t": t, "speed": 150 + 50 * np.sin(t), "gear": np.floor(3 + 2 * np.sin(t / 3))}
    reduced = downsample_columns(columns, 300)
    assert set(reduced) == {"speed", "gear"}
    assert all(x.size == y.size == 300 for x, y in reduced.values())
    with pytest.raises(Invalid):
        downsample_columns(columns, 300, channels=["rpm"])
    with pytest.raises(Invalid):
        lttb_indices(t, t, 1)
