"""The built-in analyst on real laps: it names the corner where the delta grows most, with the right loss."""

from __future__ import annotations

import numpy as np
import pytest

from pitbox.coaching.analyst import analyse_lap
from pitbox.telemetry.compare import compare_laps, delta_at_finish

from .conftest import Columns, RealLaps


def delta_growth(lap: Columns, reference: Columns, start: float, end: float, length: float | None) -> float:
    """Growth of the lap-vs-reference running delta from `start` to `end` metres (through the line if end < start)."""
    comparison = compare_laps(reference, lap, track_length=length)

    def at(x: float) -> float:
        return float(np.interp(x, comparison.distance, comparison.delta))

    if end >= start:
        return at(end) - at(start)
    return (float(comparison.delta[-1]) - at(start)) + (at(end) - float(comparison.delta[0]))


@pytest.mark.parametrize("track", ["langley", "calder"])
def test_largest_loss_is_the_corner_where_the_delta_grows_most(
    track: str, request: pytest.FixtureRequest
) -> None:
    real: RealLaps = request.getfixturevalue(track)
    reference = real.best[1]
    named = 0
    for lap, samples in real.others:
        analysis = analyse_lap(samples, reference, lap_number=lap.number, track_length=real.track_length)
        growth = {
            result.corner.name: delta_growth(
                samples, reference, result.corner.start, result.corner.end, real.track_length
            )
            for result in analysis.corners
        }
        assert len(growth) >= 2
        if not analysis.improvements:
            continue
        named += 1
        worst = analysis.improvements[0]
        assert worst.corner == max(growth, key=lambda name: growth[name])
        assert worst.time_lost == pytest.approx(growth[worst.corner], abs=0.05)
        evidence = worst.evidence
        assert evidence["corner"] == worst.corner
        assert evidence["timeLost"] == pytest.approx(worst.time_lost, abs=0.001)
        assert {"from", "to", "lap", "reference"} <= set(evidence)
        assert 0.0 < worst.confidence <= 1.0
        assert worst.text.startswith(f"{worst.corner}: ") and f"{worst.time_lost:.2f} s" in worst.text
    assert named >= 1


@pytest.mark.parametrize("track", ["langley", "calder"])
def test_corner_losses_add_up_to_the_lap_delta(track: str, request: pytest.FixtureRequest) -> None:
    real: RealLaps = request.getfixturevalue(track)
    reference = real.best[1]
    for _, samples in real.others:
        analysis = analyse_lap(samples, reference, track_length=real.track_length)
        total = sum(result.time_lost for result in analysis.corners)
        assert total == pytest.approx(
            delta_at_finish(reference, samples, track_length=real.track_length), abs=0.02
        )


def slowed(samples: Columns, start: float, end: float, length: float, factor: float) -> tuple[Columns, float]:
    """The lap driven `factor` times slower between `start` and `end` metres; returns it and the time added."""
    position = samples["lapDistPct"] * length
    dt = np.diff(samples["t"])
    inside = (position[1:] >= start) & (position[1:] < end) & (dt > 0)
    added = float(dt[inside].sum() * (factor - 1.0))
    stretched = np.where(inside, dt * factor, dt)
    return {**samples, "t": samples["t"][0] + np.concatenate(([0.0], np.cumsum(stretched)))}, added


def test_time_lost_in_one_corner_is_named_there_with_its_size(calder: RealLaps) -> None:
    reference = calder.best[1]
    length = calder.track_length
    assert length is not None
    corners = analyse_lap(reference, reference, track_length=length).corners
    target = max(corners, key=lambda result: (result.corner.end - result.corner.start) % length)
    lap, added = slowed(reference, target.corner.apex - 40.0, target.corner.apex + 40.0, length, factor=1.08)
    analysis = analyse_lap(lap, reference, track_length=length)
    assert analysis.improvements[0].corner == target.corner.name
    assert analysis.improvements[0].time_lost == pytest.approx(added, abs=0.01)
    assert len(analysis.improvements) == 1 and not analysis.strengths


def test_a_lap_against_itself_gets_no_coaching(langley: RealLaps) -> None:
    _, samples = langley.best
    analysis = analyse_lap(samples, samples)
    assert analysis.items == []
    assert analysis.delta == pytest.approx(0.0, abs=1e-9)
    assert "No corner stands out" in analysis.summary


def test_an_invalid_lap_is_met_with_silence(langley: RealLaps) -> None:
    lap, samples = langley.others[0]
    analysis = analyse_lap(samples, langley.best[1], lap_valid=False, invalid_reasons=("time_gap",))
    assert analysis.items == [] and analysis.corners == []
    assert analysis.silent_reason == "lap not valid (time_gap)"


def test_an_incomplete_lap_is_met_with_silence(langley: RealLaps) -> None:
    _, samples = langley.others[0]
    half = {name: values[: values.size // 2] for name, values in samples.items()}
    analysis = analyse_lap(half, langley.best[1])
    assert analysis.items == []
    assert analysis.silent_reason == "lap is incomplete"


def test_corners_are_found_from_the_reference_speed(langley: RealLaps, calder: RealLaps) -> None:
    oval = analyse_lap(langley.best[1], langley.best[1]).corners
    assert [result.corner.name for result in oval] == ["Turn 1", "Turn 2"]
    road = analyse_lap(calder.best[1], calder.best[1], track_length=calder.track_length).corners
    assert len(road) >= 4
    for result in road:
        assert result.reference.min_speed < result.reference.exit_speed
        assert result.reference.brake_point is not None


def test_a_lift_before_the_corner_stretch_does_not_break_the_analyst() -> None:
    """A smooth sinusoidal lap lifts early in the entry; the analyst answers instead of failing."""
    from pitbox.telemetry.compare import lap_samples
    from pitbox.telemetry.laps import detect_laps
    from tests.telemetry.conftest import synthetic_laps

    columns = {name: np.asarray(values, dtype=float) for name, values in synthetic_laps().items()}
    laps = detect_laps(columns)
    analysis = analyse_lap(
        lap_samples(columns, laps[2]), lap_samples(columns, laps[1]), lap_number=laps[2].number
    )
    assert analysis is not None
