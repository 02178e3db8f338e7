"""Cue plans on their own: items and corners in, cues out (pure; every expected number is the test's)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pitbox.coaching.models import Corner, CornerMeasures, CornerResult, Window
from pitbox.cues.plan import SpeedProfile, cue_text, plan_cues

LENGTH = 3000.0
KMH = 180.0  # 50 m/s everywhere: a 3 s lead is 150 m
FLAT = SpeedProfile(np.array([0.0, LENGTH]), np.array([KMH, KMH]), np.array([KMH, KMH]))


def corner(number: int, apex: float, lap_brake: float | None, ref_brake: float | None) -> CornerResult:
    measures = [
        CornerMeasures(brake, None, 80.0, apex, apex + 50.0, 120.0, 3) for brake in (lap_brake, ref_brake)
    ]
    return CornerResult(
        corner=Corner(f"Turn {number}", apex, apex - 250.0, apex + 250.0),
        number=number,
        lap=measures[0],
        reference=measures[1],
        time_lost=0.3,
        entry_lost=0.3,
        exit_lost=0.0,
        window=Window(apex - 400.0, apex, apex + 100.0, apex + 250.0),
    )


def brake_item(number: int, lap: float, reference: float, lost: float) -> dict[str, Any]:
    return {
        "kind": "improvement",
        "corner": f"Turn {number}",
        "cornerNumber": number,
        "phase": "entry",
        "timeLost": lost,
        "cause": {
            "kind": "brake_point",
            "unit": "m",
            "lap": {"value": lap, "at": lap},
            "reference": {"value": reference, "at": reference},
            "difference": lap - reference,
        },
    }


def test_a_cue_is_said_a_lead_time_of_driving_before_the_earlier_brake_point() -> None:
    corners = [corner(1, 1000.0, 800.0, 830.0)]
    (early,) = plan_cues(
        [brake_item(1, 800.0, 830.0, 0.4)], corners, FLAT, lap_length=LENGTH, lead_s=3.0, max_cues=3
    )
    assert (early.text, early.anchor_m, early.trigger_m) == ("Turn 1: brake 30 metres later", 800.0, 650.0)
    corners = [corner(1, 1000.0, 860.0, 830.0)]
    (late,) = plan_cues(
        [brake_item(1, 860.0, 830.0, 0.4)], corners, FLAT, lap_length=LENGTH, lead_s=2.0, max_cues=3
    )
    # Braked late: prepared for the reference's (earlier) point, 2 s x 50 m/s before it.
    assert (late.text, late.anchor_m, late.trigger_m) == ("Turn 1: brake 30 metres earlier", 830.0, 730.0)


def test_a_trigger_never_falls_in_another_corners_braking_zone_nor_before_the_line() -> None:
    # Turn 1 brakes from 600 m to its apex at 700 m; Turn 2's brake point at 820 m puts its trigger at 670 m.
    corners = [
        corner(1, 700.0, 600.0, 610.0),
        corner(2, 1000.0, 820.0, 840.0),
        corner(3, 250.0, 100.0, 110.0),
    ]
    items = [brake_item(2, 820.0, 840.0, 0.5), brake_item(3, 100.0, 110.0, 0.4)]
    (cue,) = plan_cues(items, corners, FLAT, lap_length=LENGTH, lead_s=3.0, max_cues=3)
    assert (cue.corner, cue.trigger_m) == ("Turn 2", 590.0)  # 10 m before Turn 1's zone
    # Turn 3's brake point is 100 m after the line: 150 m of lead would be before it, so no cue is planned.


def test_one_cue_per_corner_the_largest_losses_first_and_never_two_at_once() -> None:
    corners = [
        corner(n, apex, apex - 200.0, apex - 180.0) for n, apex in ((1, 700.0), (2, 1500.0), (3, 2300.0))
    ]
    items = [
        brake_item(1, 500.0, 520.0, 0.2),
        {**brake_item(1, 500.0, 520.0, 0.3), "phase": "exit"},  # the same corner again
        brake_item(2, 1300.0, 1320.0, 0.5),
        brake_item(3, 2100.0, 2120.0, 0.4),
        {**brake_item(3, 2100.0, 2120.0, 0.9), "cause": {"kind": "channel_difference", "difference": 1.0}},
    ]
    cues = plan_cues(items, corners, FLAT, lap_length=LENGTH, lead_s=3.0, max_cues=2)
    assert [(cue.corner, cue.phase) for cue in cues] == [("Turn 2", "entry"), ("Turn 3", "entry")]
    # Two corners whose triggers would be 100 m apart (2 s at 50 m/s, less than a cue takes to say): one cue.
    close = [corner(1, 700.0, 500.0, 520.0), corner(2, 800.0, 600.0, 620.0)]
    items = [brake_item(1, 500.0, 520.0, 0.3), brake_item(2, 600.0, 620.0, 0.4)]
    (kept,) = plan_cues(items, close, FLAT, lap_length=LENGTH, lead_s=3.0, max_cues=3)
    assert kept.corner == "Turn 2"


@pytest.mark.parametrize(
    ("kind", "lap", "reference", "difference", "said"),
    [
        ("brake_point", 364.0, 414.0, -50.0, "Turn 4: brake 50 metres later"),
        ("brake_point", 1788.0, 1766.0, 22.0, "Turn 4: brake 20 metres earlier"),
        ("lift", 300.0, 303.0, -3.0, "Turn 4: lift 5 metres later"),
        ("throttle_point", 762.0, 754.0, 8.0, "Turn 4: throttle 10 metres sooner"),
        ("min_speed", 65.0, 69.4, -4.4, "Turn 4: carry 4 kph more"),
        ("exit_speed", 135.0, 140.0, -5.0, "Turn 4: exit 5 kph faster"),
        ("gear", 4.0, 3.0, 1.0, "Turn 4: gear 3"),
        ("line", 4.2, 0.0, 4.2, "Turn 4: line 4 metres off"),
        ("channel_difference", 0.84, 0.85, -0.01, None),
        ("throttle_point", 740.0, 754.0, -14.0, None),  # earlier than the reference: nothing to do
    ],
)
def test_a_cue_says_the_corner_one_action_and_one_number(
    kind: str, lap: float, reference: float, difference: float, said: str | None
) -> None:
    cause = {"kind": kind, "lap": {"value": lap}, "reference": {"value": reference}, "difference": difference}
    assert cue_text("Turn 4", cause) == said
