"""The live board on its own: batches of lap distance in, outcomes out (no server; the numbers are the test's)."""

from __future__ import annotations

import uuid

import numpy as np

from pitbox.cues.board import CueBoard, LiveCue, LivePlan

LENGTH = 1000.0
SPEED_MS = 60.0
SESSION, DRIVER, PLAN = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def plan(*cues: LiveCue, after_t: float = 10.0, muted: bool = False) -> LivePlan:
    return LivePlan(PLAN, SESSION, DRIVER, after_t, LENGTH, list(cues), muted=muted)


def cue(trigger: float, *, armed: bool = True, expected: float = 100.0) -> LiveCue:
    return LiveCue(uuid.uuid4(), trigger, expected, armed)


class Car:
    """A car at 60 m/s, sampled every 10 m, from lap distance `m` at session time `t`; each batch goes on from
    where the last ended."""

    def __init__(self, t: float = 10.0, m: float = 0.0) -> None:
        self.t, self.m = t, m

    def to(self, end: float, gap: float = 0.0, **channels: float) -> dict[str, np.ndarray]:
        """Samples from the next 10 m up to lap distance `end` (through the line when `end` is smaller),
        `gap` more seconds between samples, the speed channel at 100 km/h and `channels` as given."""
        span = (end - self.m) % LENGTH or LENGTH
        steps = np.arange(10.0, span + 0.5, 10.0)
        metres = (self.m + steps) % LENGTH
        t = self.t + steps / SPEED_MS + gap * np.arange(1, steps.size + 1)
        self.t, self.m = float(t[-1]), float(metres[-1])
        columns = {"t": t, "lapDistPct": metres / LENGTH, "speed": np.full(steps.size, 100.0)}
        columns.update({name: np.full(steps.size, value) for name, value in channels.items()})
        return columns


def test_a_cue_fires_at_the_first_sample_at_or_past_its_trigger_even_across_two_batches() -> None:
    board = CueBoard()
    first, second = cue(305.0), cue(420.0)
    board.install(plan(first, second))
    car = Car(10.0, 0.0)
    assert board.observe(SESSION, car.to(300.0)) == []
    crossing = car.to(340.0)
    (fired,) = board.observe(SESSION, crossing)
    assert (fired.cue_id, fired.state, fired.reason) == (first.id, "fired", None)
    # The first sample past 305 m (310 m), the previous batch's last (300 m) before it.
    assert (fired.t, fired.m) == (crossing["t"][0], 310.0)
    (later,) = board.observe(SESSION, car.to(500.0))
    assert (later.cue_id, later.state, later.m) == (second.id, "fired", 420.0)
    assert board.plan(SESSION) is None  # nothing left to say on this lap


def test_samples_before_the_lap_starts_are_not_the_cues_lap() -> None:
    board = CueBoard()
    board.install(plan(cue(100.0), after_t=10.0))
    car = Car(10.0 - 150.0 / SPEED_MS, 850.0)  # at the line at t = 10
    # The end of the coached lap (t <= 10) passes no trigger, then the lap to 90 m: nothing to say yet.
    assert board.observe(SESSION, car.to(90.0)) == []
    (fired,) = board.observe(SESSION, car.to(150.0))
    assert (fired.state, fired.m) == ("fired", 100.0)


def test_triggers_behind_the_car_when_the_plan_arrives_and_those_never_reached_expire() -> None:
    board = CueBoard()
    passed, ahead, unreached = cue(100.0), cue(600.0), cue(990.0)
    board.install(plan(passed, ahead, unreached))
    car = Car(10.0 + 440.0 / SPEED_MS, 440.0)  # mid-lap when the plan arrives
    outcomes = board.observe(SESSION, car.to(650.0))
    assert [(o.cue_id, o.state, o.reason) for o in outcomes] == [
        (passed.id, "expired", "passed_before_armed"),
        (ahead.id, "fired", None),
    ]
    # The lap distance wraps at 980 m (a source whose line is there): the lap ends before 990 m.
    samples = car.to(980.0)
    samples["t"] = np.append(samples["t"], samples["t"][-1] + 0.2)
    samples["lapDistPct"] = np.append(samples["lapDistPct"], 0.002)
    samples["speed"] = np.append(samples["speed"], 100.0)
    (left,) = board.observe(SESSION, samples)
    assert (left.cue_id, left.state, left.reason) == (unreached.id, "expired", "not_reached")
    assert board.plan(SESSION) is None


def test_a_cue_without_its_audio_yet_or_muted_is_not_said() -> None:
    board = CueBoard()
    board.install(plan(cue(200.0, armed=False)))
    (outcome,) = board.observe(SESSION, Car().to(300.0))
    assert (outcome.state, outcome.reason, outcome.m) == ("expired", "audio_late", 200.0)
    board = CueBoard()
    board.install(plan(cue(200.0), muted=True))
    (outcome,) = board.observe(SESSION, Car().to(300.0))
    assert (outcome.state, outcome.reason) == ("muted", "muted")


def test_off_pace_laps_silence_cues() -> None:
    cases = [
        ({"flag": 3.0}, 0.0, "yellow_flag"),
        ({"flag": 4.0}, 0.0, "red_flag"),
        ({"flag": 6.0}, 0.0, "chequered_flag"),
        ({"inPit": 1.0}, 0.0, "in_pit"),
        ({"speed": 60.0}, 0.0, "off_pace"),  # 60 < 0.7 x the 100 km/h expected there
        ({}, 1.0, "invalid_lap"),  # samples more than 1 s apart: the lap no longer counts
    ]
    for channels, gap, reason in cases:
        board = CueBoard()
        board.install(plan(cue(300.0)))
        car = Car()
        assert board.observe(SESSION, car.to(200.0)) == []
        (outcome,) = board.observe(SESSION, car.to(400.0, gap, **channels))
        assert (outcome.state, outcome.reason) == ("suppressed", reason), channels


def test_what_the_lap_showed_earlier_still_counts_at_a_later_trigger() -> None:
    board = CueBoard()
    board.install(plan(cue(600.0)))
    car = Car()
    # A yellow flag shown at 100 m and never shown again (samples without `flag`): still yellow at 600 m.
    assert board.observe(SESSION, car.to(100.0, flag=3.0)) == []
    (outcome,) = board.observe(SESSION, car.to(700.0))
    assert (outcome.state, outcome.reason) == ("suppressed", "yellow_flag")
    board = CueBoard()
    board.install(plan(cue(600.0)))
    car = Car()
    assert board.observe(SESSION, car.to(100.0, inPit=1.0)) == []  # an out-lap from the pit lane
    (outcome,) = board.observe(SESSION, car.to(700.0, inPit=0.0, flag=1.0))
    assert (outcome.state, outcome.reason) == ("suppressed", "in_pit")
    board = CueBoard()
    board.install(plan(cue(600.0)))
    car = Car()
    assert board.observe(SESSION, car.to(300.0)) == []
    car.m = 150.0  # a reset: the lap distance jumps back 150 m
    (outcome,) = board.observe(SESSION, car.to(700.0))
    assert (outcome.state, outcome.reason) == ("suppressed", "invalid_lap")


def test_a_reloaded_plan_keeps_its_progress_and_never_brings_back_a_decided_cue() -> None:
    board = CueBoard()
    said, coming = cue(200.0), cue(500.0)
    board.install(plan(said, coming))
    car = Car()
    (fired,) = board.observe(SESSION, car.to(300.0))
    assert fired.cue_id == said.id
    # The same plan read back before the claim was stored (both cues still armed in that read).
    board.install(plan(LiveCue(said.id, 200.0, 100.0, True), LiveCue(coming.id, 500.0, 100.0, True)))
    (next_one,) = board.observe(SESSION, car.to(600.0))
    assert (next_one.cue_id, next_one.state) == (coming.id, "fired")


def test_a_session_without_a_plan_or_a_position_passes_untouched() -> None:
    board = CueBoard()
    assert board.observe(SESSION, Car().to(300.0)) == []
    board.install(plan(cue(150.0)))
    assert board.observe(SESSION, {"t": np.array([10.1, 10.2]), "speed": np.array([1.0, 2.0])}) == []
    only_distance = {"t": np.array([10.1, 10.2]), "lapDist": np.array([140.0, 160.0])}
    (fired,) = board.observe(SESSION, only_distance)
    assert (fired.state, fired.m) == ("fired", 160.0)
