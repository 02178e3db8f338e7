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

from pitbox.telemetry.errors import BadPoints, MissingChannels, RaggedChunk, UnknownChannels

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]


def lttb_indices(x: FloatArray, y: FloatArray, points: int) -> IndexArray:
    """Indices (into x and y, ascending) of the `points` samples LTTB keeps; NaN samples are never kept.

    `x` must not decrease (time or lap distance). Always keeps the first and last present samples.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return _lttb(x, y, points, _gaps(x))


def _gaps(values: FloatArray) -> npt.NDArray[np.bool_] | None:
    """Where `values` is NaN, or None when it never is (one reduction: min is NaN exactly when one is)."""
    if values.size == 0 or not np.isnan(values.min()):
        return None
    return np.isnan(values)


def _lttb(x: FloatArray, y: FloatArray, points: int, x_gaps: npt.NDArray[np.bool_] | None) -> IndexArray:
    """`lttb_indices`, given where x has gaps (worked out once for all the channels that share it)."""
    if points < 2:
        raise BadPoints("downsampling needs at least 2 points")
    if x.shape != y.shape or x.ndim != 1:
        raise RaggedChunk("x and y need the same number of samples")
    y_gaps = _gaps(y)
    downsampler = LTTBDownsampler()  # type: ignore[no-untyped-call]
    gaps = [found for found in (x_gaps, y_gaps) if found is not None]
    if not gaps:  # the common case: no index array of every sample needed
        if x.size <= points:
            return np.arange(x.size, dtype=np.intp)
        if points == 2:  # LTTB keeps the first and the last; the library asserts n_out >= 3 (a Rust panic)
            return np.array([0, x.size - 1], dtype=np.intp)
        return np.asarray(downsampler.downsample(x, y, n_out=points), dtype=np.intp)
    present = np.flatnonzero(~np.logical_or.reduce(gaps))
    if present.size <= points:
        return present
    if points == 2:
        return present[[0, -1]]
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
        raise MissingChannels(f"downsampling needs the {x_channel} channel")
    x = np.asarray(columns[x_channel], dtype=np.float64)
    names = [name for name in columns if name != x_channel] if channels is None else list(channels)
    missing = [name for name in names if name not in columns]
    if missing:
        raise UnknownChannels("unknown channels", details={"channels": missing})
    x_gaps = _gaps(x)
    traces = {}
    for name in names:
        y = np.asarray(columns[name], dtype=np.float64)
        kept = _lttb(x, y, points, x_gaps)
        traces[name] = (x[kept], y[kept])
    return traces
