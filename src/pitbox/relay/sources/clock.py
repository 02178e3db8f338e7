"""A sim clock for packets that carry none but a lap timer (Assetto Corsa, Project CARS)."""

from __future__ import annotations

__all__ = ["LapTimerClock"]


class LapTimerClock:
    """Seconds of driving, advanced by the lap timer's progress from one packet to the next.

    Within a lap it advances by the timer's increase; at a new lap (the lap count going up) by what was left
    of the last lap (its time minus the timer before) plus the new timer. A timer that goes back without a
    new lap (a reset, a restart) or leaps more than `max_step_s` does not move the clock: the relay's session
    clock then falls back to the time between packets as they arrive (pitbox.relay.sessions).
    """

    def __init__(self, *, unit_s: float = 1.0, max_step_s: float = 5.0) -> None:
        self._unit = unit_s
        self._max_step = max_step_s
        self._timer: float | None = None
        self._lap: int | None = None
        self.seconds = 0.0
        self.jumped = False

    def advance(self, timer: float, last_lap: float, lap: int) -> float:
        """The clock after a packet with this lap timer, last lap time and lap count (timer units)."""
        self.jumped = False
        if self._timer is not None and timer >= 0:
            if lap == (self._lap or 0) + 1 and last_lap > 0:
                step = (max(last_lap - self._timer, 0.0) + timer) * self._unit
            else:
                step = (timer - self._timer) * self._unit if lap == self._lap else -1.0
            if 0.0 <= step <= self._max_step:
                self.seconds += step
            else:
                self.jumped = True
        if timer >= 0:
            self._timer, self._lap = timer, lap
        return self.seconds
