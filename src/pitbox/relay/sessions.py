"""Relay sessions: when one starts and ends, what `t` each sample gets, and what goes into the spool.

* A car's first sample opens a *pending* session in the spool; its samples are spooled from then on, but
  only the last `pre_roll_s` seconds of them are kept until the car first moves (speed above
  `MOVING_KMH`). Then the session starts and is sent, pre-roll first. With `start_when="packets"` it
  starts with the first sample (a stationary car: a setup check, a pit-stop practice).
* It goes on through pit stops, pauses and resets: `t` never goes back.
* It ends after `idle_end_s` seconds without a sample, when the packets name another track, or when the
  relay stops. A relay restarted within `idle_end_s` of a session's last sample carries it on.

`t` counts seconds from the session's first sample on the sim's clock where the packets carry one (F1
session time, Forza's timestamp, the Codemasters total time, iRacing's session time, the lap timer of
AC and Project CARS), so a capture replayed faster than real time keeps its real times. When that clock
goes back (a restart, a flashback) or is absent, the time between arrivals is used instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import orjson

from pitbox.relay.sources.base import CarSample, SessionInfo
from pitbox.relay.store import Spool

__all__ = ["MOVING_KMH", "SessionTracker", "StartWhen"]

MOVING_KMH = 2.0
StartWhen = Literal["moving", "packets"]
#: A forward jump of the sim's clock longer than this is not believed (a new session under the same id).
MAX_CLOCK_STEP_S = 3600.0


@dataclass(slots=True)
class _Open:
    id: int
    car_index: int
    pending: bool
    info: SessionInfo
    t: float
    clock: float | None
    wall: float
    trimmed_at: float = 0.0


class SessionTracker:
    """Turns car samples into spooled session samples; `announce(event, fields)` hears starts and ends."""

    def __init__(
        self,
        spool: Spool,
        *,
        idle_end_s: float = 30.0,
        start_when: StartWhen = "moving",
        pre_roll_s: float = 60.0,
        announce: Callable[[str, dict[str, object]], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._spool = spool
        self.idle_end_s = idle_end_s
        self.start_when = start_when
        self.pre_roll_s = pre_roll_s
        self._announce = announce or (lambda event, fields: None)
        self._wall = wall
        self._open: dict[int, _Open] = {}
        self._resume = {s.car_index: s for s in spool.sessions(("pending", "active"))}

    def feed(self, samples: list[CarSample], at: float | None = None) -> None:
        """Spool these samples, which arrived `at` (wall clock; now by default). Buffered: the spool
        commits them in groups."""
        now = self._wall() if at is None else at
        for sample in samples:
            self._one(sample, now)

    def _one(self, sample: CarSample, now: float) -> None:
        current = self._open.get(sample.car_index)
        if current is None:
            current = self._resumed(sample, now) or self._start(sample, now)
        elif _other_track(current.info, sample.info):
            self.end(current, "track_changed")
            current = self._start(sample, now)
        elif sample.info != current.info:
            merged = current.info.merged(sample.info)
            if merged != current.info:
                current.info = merged
                self._spool.update_info(current.id, merged)
        if (
            sample.clock is not None
            and current.clock is not None
            and 0 <= sample.clock - current.clock <= MAX_CLOCK_STEP_S
        ):
            t = current.t + (sample.clock - current.clock)
        elif current.clock is None and current.t == 0.0 and current.wall == now:
            t = 0.0
        else:
            t = current.t + max(now - current.wall, 0.0)
        current.t, current.clock, current.wall = t, sample.clock, now
        body = orjson.dumps({"t": round(t, 6), **sample.values})
        self._spool.append(current.id, t, sample.clock, body, now)
        if current.pending:
            speed = sample.values.get("speed", 0.0)
            if isinstance(speed, int | float) and math.isfinite(speed) and speed > MOVING_KMH:
                current.pending = False
                self._spool.activate(current.id, now)
                self._announce("session_started", self._describe(current))
            elif t - current.trimmed_at > 1.0 and t > self.pre_roll_s:
                current.trimmed_at = t
                self._spool.trim_pre_roll(current.id, t - self.pre_roll_s)

    def _start(self, sample: CarSample, now: float) -> _Open:
        pending = self.start_when == "moving"
        session_id = self._spool.open_session(sample.car_index, sample.info, pending=pending, now=now)
        opened = _Open(session_id, sample.car_index, pending, sample.info, 0.0, sample.clock, now)
        self._open[sample.car_index] = opened
        if not pending:
            self._announce("session_started", self._describe(opened))
        return opened

    def _resumed(self, sample: CarSample, now: float) -> _Open | None:
        earlier = self._resume.pop(sample.car_index, None)
        if earlier is None:
            return None
        fresh = earlier.last_wall is not None and now - earlier.last_wall <= self.idle_end_s
        if not fresh or _other_track(earlier.info, sample.info):
            self._spool.end_session(earlier.id, "relay_restarted")
            return None
        opened = _Open(
            earlier.id,
            earlier.car_index,
            earlier.state == "pending",
            earlier.info,
            earlier.last_t or 0.0,
            earlier.last_clock,
            earlier.last_wall or now,
        )
        self._open[sample.car_index] = opened
        self._announce("session_resumed", self._describe(opened))
        return opened

    def check_idle(self) -> None:
        """End the sessions that have had no sample for `idle_end_s` seconds (and stale ones from a restart)."""
        now = self._wall()
        for opened in list(self._open.values()):
            if now - opened.wall >= self.idle_end_s:
                self.end(opened, "idle")
        for car_index, earlier in list(self._resume.items()):
            if earlier.last_wall is None or now - earlier.last_wall >= self.idle_end_s:
                self._spool.end_session(earlier.id, "idle")
                del self._resume[car_index]

    def end(self, opened: _Open, reason: str) -> None:
        """End one session (a pending one is dropped: the car never moved)."""
        self._open.pop(opened.car_index, None)
        self._spool.end_session(opened.id, reason)
        if not opened.pending:
            self._announce("session_ended", {**self._describe(opened), "reason": reason})

    def end_all(self, reason: str) -> None:
        """End every open session (the relay is stopping)."""
        for opened in list(self._open.values()):
            self.end(opened, reason)

    def _describe(self, opened: _Open) -> dict[str, object]:
        info = opened.info
        return {"session": opened.id, "car": info.car, "track": info.track_name, "sim": info.sim}


def _other_track(known: SessionInfo, new: SessionInfo) -> bool:
    """Both name a track, and not the same one (name or layout)."""
    if not known.track_name or not new.track_name:
        return False
    if known.track_name != new.track_name:
        return True
    return bool(known.track_config and new.track_config and known.track_config != new.track_config)
