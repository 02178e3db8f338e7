"""Corner finding on a reference lap: prominent minima of its (smoothed) speed, confirmed by the steering.

The lap is treated as a loop, so a corner near the line is found like any other. Each corner's segment runs
from the speed maximum before it (its entry, where the reference starts braking) to the next corner's entry.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pitbox.coaching.models import Corner

FloatArray = npt.NDArray[np.float64]

#: Speed dips shallower than this (km/h) are gear shifts or bumps, not corners, whatever the car.
MIN_DROP_KMH = 6.0


def smooth_loop(values: FloatArray, window: int) -> FloatArray:
    """Centred moving average over `window` samples of a loop (the last sample is followed by the first)."""
    if window <= 1 or values.size < window:
        return values.copy()
    half = window // 2
    padded = np.concatenate((values[-half:], values, values[:half]))
    kernel = np.full(2 * half + 1, 1.0 / (2 * half + 1))
    return np.convolve(padded, kernel, mode="valid")


def find_corners(
    distance: FloatArray,
    speed: FloatArray,
    steering: FloatArray | None = None,
    *,
    smoothing_m: float = 24.0,
    min_spacing_m: float = 60.0,
) -> list[Corner]:
    """The corners of a lap sampled on the evenly spaced grid `distance` (0 to the lap length, both ends).

    A corner is a speed minimum whose dip (to the lower of the maxima around it) is at least MIN_DROP_KMH and
    4 % of the lap's top speed; a shallow dip also needs the steering to show a turn.
    """
    if distance.size < 8 or not np.isfinite(speed).any():
        return []
    length = float(distance[-1])
    step = float(distance[1] - distance[0])
    loop = np.nan_to_num(speed[:-1], nan=float(np.nanmean(speed)))  # the last grid point is the line again
    smooth = smooth_loop(loop, max(int(round(smoothing_m / step)), 1) | 1)
    min_drop = max(MIN_DROP_KMH, 0.04 * float(smooth.max()))
    turning = _turning(steering[:-1], smooth, step) if steering is not None else None

    minima = _prominent_minima(smooth, min_drop, turning)
    minima = _spaced(minima, smooth, max(int(min_spacing_m / step), 1), smooth.size)
    if not minima:
        return []
    entries = [_entry_before(smooth, minima[k - 1], minima[k]) for k in range(len(minima))]
    first = int(np.argmin([(entries[k] - entries[0]) % smooth.size for k in range(len(minima))]))
    corners = []
    for number in range(len(minima)):
        k = (first + number) % len(minima)
        corners.append(
            Corner(
                name=f"Turn {number + 1}",
                apex=float(minima[k] * step),
                start=float(entries[k] * step),
                end=float(entries[(k + 1) % len(minima)] * step) % length,
            )
        )
    return corners


def _turning(steering: FloatArray, smooth_speed: FloatArray, step: float) -> FloatArray:
    """How far the smoothed steering is from straight ahead, as a fraction of the lap's largest turn."""
    present = np.nan_to_num(steering, nan=0.0)
    window = max(int(round(20.0 / step)), 1) | 1
    steer = smooth_loop(present, window)
    fast = smooth_speed >= np.quantile(smooth_speed, 0.8)
    straight = float(np.median(steer[fast])) if fast.any() else 0.0
    away = np.abs(steer - straight)
    top = float(away.max())
    return away / top if top > 0 else np.zeros_like(away)


def _prominent_minima(smooth: FloatArray, min_drop: float, turning: FloatArray | None) -> list[int]:
    n = smooth.size
    before = np.roll(smooth, 1)
    after = np.roll(smooth, -1)
    candidates = np.flatnonzero((smooth <= before) & (smooth < after))
    kept = []
    for index in candidates.tolist():
        drop = _prominence(smooth, index, n)
        if drop < min_drop:
            continue
        if turning is not None and drop < 2 * min_drop and turning[index] < 0.2:
            continue  # a shallow dip with the wheel straight: a lift on a straight, not a corner
        kept.append(index)
    return kept


def _prominence(smooth: FloatArray, index: int, n: int) -> float:
    """Height of the dip at `index`: the lower of the highest points on each side before a lower point."""
    value = smooth[index]
    peaks = []
    for direction in (-1, 1):
        highest = value
        for offset in range(1, n):
            other = smooth[(index + direction * offset) % n]
            if other < value:
                break
            highest = max(highest, other)
        peaks.append(highest)
    return float(min(peaks) - value)


def _spaced(minima: list[int], smooth: FloatArray, spacing: int, n: int) -> list[int]:
    """Drop the shallower of two minima closer than `spacing` samples (one corner with a wobble)."""
    kept = sorted(minima, key=lambda index: smooth[index])
    chosen: list[int] = []
    for index in kept:
        if all(min((index - other) % n, (other - index) % n) >= spacing for other in chosen):
            chosen.append(index)
    return sorted(chosen)


def _entry_before(smooth: FloatArray, previous_apex: int, apex: int) -> int:
    """The fastest point between two apexes, going round the loop: where braking for `apex` starts."""
    n = smooth.size
    span = (apex - previous_apex) % n or n
    indices = (previous_apex + np.arange(1, span)) % n
    if indices.size == 0:
        return apex
    return int(indices[int(np.argmax(smooth[indices]))])
