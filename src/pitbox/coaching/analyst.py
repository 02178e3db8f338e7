"""The built-in lap analyst: a lap against a reference lap, corner by corner, in plain numpy (no I/O).

Both laps are aligned on lap distance (`compare_laps`), the corners come from the reference's speed minima
(or the track's stored corners), and each corner's time loss is the growth of the running delta over its
segment, so the losses add up to the lap's delta. Entry (segment start to apex) and exit (apex to segment
end) are judged apart, so a loss on the way in that is won back on the way out is still reported. An item is
written only where a loss stands clear of the delta's noise, and it names a measured cause with both laps'
numbers (`causes`), or, where no measure explains it, the channels that differ most. A corner is praised
("keep it") only where the lap was better on the way in and on the way out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pitbox.coaching.causes import (
    advice,
    causes_of_gain,
    causes_of_loss,
    describe,
    differing_channels,
    line_cause,
)
from pitbox.coaching.corners import find_corners
from pitbox.coaching.measures import compare_corner
from pitbox.coaching.models import Analysis, Cause, CoachingItem, Corner, CornerResult, Phase
from pitbox.errors import Invalid
from pitbox.telemetry.compare import LapComparison, compare_laps

FloatArray = npt.NDArray[np.float64]
Columns = Mapping[str, FloatArray]

#: Channels the analyst aligns: the measures, those compared when no measure explains a loss, and position.
CHANNELS = (
    "speed",
    "throttle",
    "brake",
    "brakePressure",
    "gear",
    "steering",
    "rpm",
    "gLat",
    "gLong",
    "x",
    "y",
    "lat",
    "lon",
)
PHASE_WORDS: dict[Phase, str] = {"entry": " entry", "exit": " exit", "corner": ""}


@dataclass(frozen=True, slots=True)
class AnalystLimits:
    """When the analyst speaks: the smallest loss worth an item, and how many items at most."""

    min_loss_s: float = 0.05
    noise_factor: float = 2.0
    max_improvements: int = 3
    max_strengths: int = 2
    min_coverage: float = 0.95
    max_gap_s: float = 1.0


def analyse_lap(
    lap: Columns,
    reference: Columns,
    *,
    lap_number: int | None = None,
    lap_valid: bool = True,
    invalid_reasons: Sequence[str] = (),
    reference_label: str = "your best lap",
    lap_time: float | None = None,
    reference_time: float | None = None,
    track_length: float | None = None,
    corners: Sequence[Corner] | None = None,
    limits: AnalystLimits | None = None,
    new_best: bool = False,
) -> Analysis:
    """Compare `lap` with `reference` (each line to line, as `lap_samples` cuts them) and coach the driver.

    Lap times (from lap detection) only feed the summary; the delta comes from the distance alignment.
    `new_best` says the lap beat the reference, the driver's previous best: the summary says so.
    Says nothing (items empty, `silent_reason` set) for an invalid or incomplete lap.
    """
    limits = limits or AnalystLimits()
    if not lap_valid:
        reasons = ", ".join(invalid_reasons) or "invalid"
        return _silent(lap_number, reference_label, f"lap not valid ({reasons})")
    for name, columns in (("lap", lap), ("reference", reference)):
        problem = _incompleteness(columns, track_length, limits)
        if problem:
            return _silent(lap_number, reference_label, f"{name} {problem}")
    try:
        comparison = compare_laps(reference, lap, channels=CHANNELS, track_length=track_length)
    except Invalid as exc:
        return _silent(lap_number, reference_label, exc.message)
    if "speed" not in comparison.a or "speed" not in comparison.b:
        return _silent(lap_number, reference_label, "no speed channel")
    if comparison.track_length <= 1.0:
        return _silent(lap_number, reference_label, "the lap's length is unknown")
    delta = float(comparison.delta[-1])
    noise = _delta_noise(comparison)
    found = (
        list(corners)
        if corners
        else find_corners(comparison.distance, comparison.a["speed"], comparison.a.get("steering"))
    )
    measured = [compare_corner(comparison, found, index) for index in range(len(found))]
    threshold = max(limits.min_loss_s, limits.noise_factor * noise)
    improvements: list[CoachingItem] = []
    strengths: list[CoachingItem] = []
    for result in measured:
        improvements += _improvements(comparison, result, threshold, reference_label, noise)
        strength = _strength(comparison, result, threshold, reference_label, noise)
        if strength is not None:
            strengths.append(strength)
    improvements = sorted(improvements, key=lambda item: -item.time_lost)[: limits.max_improvements]
    strengths = sorted(strengths, key=lambda item: item.time_lost)[: limits.max_strengths]
    return Analysis(
        lap_number=lap_number,
        reference_label=reference_label,
        lap_time=lap_time,
        reference_time=reference_time,
        delta=delta,
        noise_s=noise,
        summary=_summary(
            lap_number, lap_time, delta, reference_label, reference_time, improvements, strengths, new_best
        ),
        improvements=improvements,
        strengths=strengths,
        corners=measured,
        track_length=comparison.track_length,
        new_best=new_best,
    )


def _silent(lap_number: int | None, reference_label: str, reason: str) -> Analysis:
    return Analysis(
        lap_number=lap_number,
        reference_label=reference_label,
        lap_time=None,
        reference_time=None,
        delta=None,
        noise_s=0.0,
        summary=f"No coaching for this lap: {reason}.",
        silent_reason=reason,
    )


def _incompleteness(columns: Columns, track_length: float | None, limits: AnalystLimits) -> str | None:
    """Why a lap's samples cannot be trusted line to line (None when they can)."""
    if "t" not in columns or "speed" not in columns:
        return "lacks the t or speed channel"
    t = np.asarray(columns["t"], dtype=np.float64)
    if "lapDistPct" in columns:
        position = np.asarray(columns["lapDistPct"], dtype=np.float64)
    elif "lapDist" in columns:
        dist = np.asarray(columns["lapDist"], dtype=np.float64)
        length = track_length or float(np.nanmax(dist)) if np.isfinite(dist).any() else 0.0
        position = dist / length if length > 0 else np.full(dist.shape, np.nan)
    else:
        return "has no lap position (lapDistPct, lapDist or speed)"
    present = np.isfinite(position) & np.isfinite(t)
    if present.sum() < 20:
        return "has too few samples"
    bins = np.unique(np.clip((position[present] % 1.0) * 50, 0, 49).astype(int))
    if bins.size < limits.min_coverage * 50:
        return "is incomplete"
    if float(np.diff(t[present]).max()) > limits.max_gap_s:
        return "has a gap in its samples"
    return None


def _delta_noise(comparison: LapComparison) -> float:
    """Robust size of the delta's sample-to-sample wobble over ~40 m: what alignment alone can produce."""
    delta = comparison.delta
    step = float(comparison.distance[1] - comparison.distance[0])
    window = max(int(round(40.0 / step)), 3) | 1
    half = window // 2
    padded = np.concatenate((np.full(half, delta[0]), delta, np.full(half, delta[-1])))
    trend = np.convolve(padded, np.full(window, 1.0 / window), mode="valid")
    wobble = delta - trend
    spread = 1.4826 * float(np.median(np.abs(wobble - np.median(wobble))))
    return max(0.01, 3.0 * spread)


def _improvements(
    comparison: LapComparison, result: CornerResult, threshold: float, reference: str, noise: float
) -> list[CoachingItem]:
    """The corner's losses worth a word: entry and exit each on their own, else the whole segment."""
    corner = result.corner
    phases: list[tuple[Phase, float, float, float]] = []
    if result.entry_lost >= threshold:
        phases.append(("entry", corner.start, corner.apex, result.entry_lost))
    if result.exit_lost >= threshold:
        phases.append(("exit", corner.apex, corner.end, result.exit_lost))
    if not phases and result.time_lost >= threshold:
        phases.append(("corner", corner.start, corner.end, result.time_lost))
    items = []
    length = comparison.track_length
    for phase, start, end, lost in phases:
        causes = causes_of_loss(result, phase, length)
        line = line_cause(comparison, start, end)
        if line is not None:
            causes.append(line)
        explained = bool(causes)
        if not causes:
            causes = differing_channels(comparison, start, end)
        where = f"{corner.name}{PHASE_WORDS[phase]}"
        if explained:
            said = " and ".join(describe(cause, reference) for cause in causes[:2])
            text = f"{where}: {said}, and lost {lost:.2f} s"
            todo = advice(causes, reference)
            text += f"; {todo}." if todo else "."
        else:
            text = f"{where}: lost {lost:.2f} s, and no measure explains it" + _differences(causes) + "."
        items.append(_item("improvement", result, phase, start, end, text, lost, noise, explained, causes))
    return items


def _strength(
    comparison: LapComparison, result: CornerResult, threshold: float, reference: str, noise: float
) -> CoachingItem | None:
    """Praise for a corner won on the way in and on the way out, with what the lap did better."""
    gained = -result.time_lost
    if not (result.entry_lost < 0 and result.exit_lost < 0 and gained >= threshold):
        return None
    corner = result.corner
    causes = causes_of_gain(result, comparison.track_length)
    line = line_cause(comparison, corner.start, corner.end)
    if line is not None:
        causes.append(line)
    explained = bool(causes)
    if not causes:
        causes = differing_channels(comparison, corner.start, corner.end)
    if explained:
        how = " and ".join(describe(cause, reference) for cause in causes[:2])
    else:
        how = "no single measure explains it" + _differences(causes)
    text = f"{corner.name}: {gained:.2f} s faster than {reference} on the way in and out; {how}. Keep it."
    return _item(
        "strength",
        result,
        "corner",
        corner.start,
        corner.end,
        text,
        result.time_lost,
        noise,
        explained,
        causes,
    )


def _differences(causes: Sequence[Cause]) -> str:
    if not causes:
        return ""
    return (
        "; over this stretch "
        + ", then ".join(describe(cause, "") for cause in causes)
        + " (this lap vs the reference)"
    )


def _item(
    kind: str,
    result: CornerResult,
    phase: Phase,
    start: float,
    end: float,
    text: str,
    time_lost: float,
    noise: float,
    explained: bool,
    causes: Sequence[Cause],
) -> CoachingItem:
    return CoachingItem(
        kind="strength" if kind == "strength" else "improvement",
        corner=result.corner.name,
        corner_number=result.number,
        phase=phase,
        start=start,
        end=end,
        text=text,
        time_lost=time_lost,
        confidence=_confidence(time_lost, noise, explained),
        causes=tuple(causes),
        evidence=_evidence(result),
    )


def _confidence(amount: float, noise: float, corroborated: bool) -> float:
    """Near 1 when the time is far above the noise and a measure explains it; lower otherwise."""
    base = float(np.clip(1.0 - noise / max(abs(amount), 1e-9), 0.05, 0.95))
    return round(base if corroborated else 0.6 * base, 2)


def _evidence(result: CornerResult) -> dict[str, object]:
    return {
        "corner": result.corner.name,
        "number": result.number,
        "from": round(result.corner.start, 1),
        "to": round(result.corner.end, 1),
        "apex": round(result.corner.apex, 1),
        "window": result.window.to_json(),
        "timeLost": round(result.time_lost, 3),
        "entryLost": round(result.entry_lost, 3),
        "exitLost": round(result.exit_lost, 3),
        "lap": result.lap.to_json(),
        "reference": result.reference.to_json(),
    }


def _summary(
    lap_number: int | None,
    lap_time: float | None,
    delta: float,
    reference_label: str,
    reference_time: float | None,
    improvements: list[CoachingItem],
    strengths: list[CoachingItem],
    new_best: bool,
) -> str:
    name = f"Lap {lap_number}" if lap_number is not None else "This lap"
    timed = f" {lap_time:.3f} s," if lap_time is not None else ""
    versus = f" ({reference_time:.3f} s)" if reference_time is not None else ""
    if new_best:
        parts = [f"{name}:{timed} a new best, {abs(delta):.2f} s faster than {reference_label}{versus}."]
    else:
        sign = "+" if delta >= 0 else "-"
        parts = [f"{name}:{timed} {sign}{abs(delta):.2f} s to {reference_label}{versus}."]
    if improvements:
        worst = improvements[0]
        where = f"{worst.corner}{PHASE_WORDS[worst.phase]}"
        parts.append(f"Most time lost in {where} ({worst.time_lost:.2f} s).")
    if strengths:
        best = strengths[0]
        parts.append(f"Best gain in {best.corner} ({-best.time_lost:.2f} s).")
    if not improvements and not strengths:
        parts.append("No corner stands out from the noise; keep it consistent.")
    return " ".join(parts)
