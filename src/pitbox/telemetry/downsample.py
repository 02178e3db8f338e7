"""Downsampling for charts: Largest-Triangle-Three-Buckets (LTTB), keeping the shape of a trace in N points.

The triangle search runs in `tsdownsample` (Rust, SIMD; the library behind plotly-resampler). Missing values
are left out before the search, so a NaN never becomes a chosen point, and a trace that already has N points
or fewer is returned whole. Like tsdownsample, the next bucket's mean x is taken as the middle of its x range:
the same points as the textbook algorithm on evenly sampled traces, a near-identical choice elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt
from tsdownsample import LTTBDownsampler

from pitbox.errors import Invalid

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]


def lttb_indices(x: FloatArray, y: FloatArray, points: int) -> IndexArray:
    """Indices (into x and y, ascending) of the `points` samples LTTB keeps; NaN samples are never kept.

    `x` must not decrease (time or lap distance). Always keeps the first and last present samples.
    """
    if points < 2:
        raise Invalid("downsampling needs at least 2 points", code="bad_points")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise Invalid("x and y need the same number of samples", code="ragged_chunk")
    gaps = np.isnan(x) | np.isnan(y)
    downsampler = LTTBDownsampler()  # type: ignore[no-untyped-call]
    if not gaps.any():  # the common case: no index array of every sample needed
        if x.size <= points:
            return np.arange(x.size, dtype=np.intp)
        return np.asarray(downsampler.downsample(x, y, n_out=points), dtype=np.intp)
    present = np.flatnonzero(~gaps)
    if present.size <= points:
        return present
    kept = downsampler.downsample(
        np.ascontiguousarray(x[present]), np.ascontiguousarray(y[present]), n_out=points
    )
    return present[np.asarray(kept, dtype=np.intp)]


def downsample_trace(x: FloatArray, y: FloatArray, points: int) -> tuple[FloatArray, FloatArray]:
    """The (x, y) points LTTB keeps of one trace."""
    kept = lttb_indices(x, y, points)
    return np.asarray(x, dtype=np.float64)[kept], np.asarray(y, dtype=np.float64)[kept]


def downsample_columns(
    columns: Mapping[str, FloatArray],
    points: int,
    *,
    x_channel: str = "t",
    channels: Iterable[str] | None = None,
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """Each channel (all but `x_channel` when `channels` is None) reduced to its own `points` (x, y) points."""
    if x_channel not in columns:
        raise Invalid(f"downsampling needs the {x_channel} channel", code="missing_channels")
    x = np.asarray(columns[x_channel], dtype=np.float64)
    names = [name for name in columns if name != x_channel] if channels is None else list(channels)
    missing = [name for name in names if name not in columns]
    if missing:
        raise Invalid("unknown channels", code="unknown_channels", details={"channels": missing})
    return {name: downsample_trace(x, np.asarray(columns[name], dtype=np.float64), points) for name in names}
