"""iRacing through pyirsdk's shared memory (Windows, where the sim runs), or a memory snapshot file.

There is no UDP here: `poll()` reads the latest variable buffer and makes one sample each time the
session tick moves on (iRacing updates it at 60 Hz), so a snapshot file, whose tick never moves, gives one.
Every scalar variable is sent (arrays such as the CarIdx… ones would make hundreds of channels); the
alias table maps the known ones. Track (display name, configuration, length) and car come from the
session-info YAML; `SessionTime` is the sim's clock.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import irsdk

from pitbox.relay.errors import BadSnapshot
from pitbox.relay.sources.base import CarSample, DecodeCounts, SessionInfo
from pitbox.telemetry.aliases import SampleMapper

__all__ = ["IRacingPoller"]

_NUMERIC_TYPES = (1, 2, 3, 4, 5)  # irsdk bool, int, bitfield, float, double (0 is char)


class IRacingPoller:
    """One sample each time iRacing's session tick changes; `test_file` reads a snapshot instead."""

    source = "iracing"

    def __init__(self, *, test_file: Path | None = None) -> None:
        self.counts = DecodeCounts()
        self.outbox: list[bytes] = []
        self._test_file = test_file
        self._ir: Any = None
        self._names: list[str] = []
        self._tick: int | None = None
        self._info: SessionInfo | None = None
        self._info_update = -1
        self._mapper = SampleMapper("iracing")

    def connected(self) -> bool:
        """Whether the sim (or the snapshot) can be read now; connects when it can."""
        if self._ir is not None and self._ir.is_initialized and self._ir.is_connected:
            return True
        ir = irsdk.IRSDK()
        with contextlib.redirect_stdout(io.StringIO()):  # pyirsdk prints "Failed to connect" on stdout
            started = ir.startup(test_file=str(self._test_file)) if self._test_file else ir.startup()
        if not started or not ir.is_initialized:
            if self._test_file is not None:
                raise BadSnapshot(f"{self._test_file.name} is not an iRacing memory snapshot")
            return False
        headers = ir._var_headers_dict
        self._names = [
            name for name, header in headers.items() if header.count == 1 and header.type in _NUMERIC_TYPES
        ]
        if not self._names and self._test_file is not None:
            raise BadSnapshot(f"{self._test_file.name} holds no variables")
        self._ir = ir
        return True

    def poll(self) -> list[CarSample]:
        """A sample when the session tick moved since the last poll, else nothing."""
        if not self.connected():
            return []
        ir = self._ir
        ir.freeze_var_buffer_latest()
        try:
            tick = ir["SessionTick"]
            if tick == self._tick:
                return []
            self._tick = tick
            self.counts.datagrams += 1
            raw = {name: value for name in self._names if isinstance(value := ir[name], int | float)}
            clock = float(raw.pop("SessionTime", 0.0))
            info = self._session_info(ir)
        finally:
            ir.unfreeze_var_buffer_latest()
        self.counts.samples += 1
        return [CarSample(0, clock, self._mapper.map(raw), info)]

    def close(self) -> None:
        """Let go of the shared memory."""
        if self._ir is not None:
            self._ir.shutdown()
            self._ir = None

    def _session_info(self, ir: Any) -> SessionInfo:
        update = ir.last_session_info_update
        if self._info is not None and update == self._info_update:
            return self._info
        weekend = ir["WeekendInfo"] or {}
        drivers = ir["DriverInfo"] or {}
        car = None
        try:
            car = drivers["Drivers"][drivers["DriverCarIdx"]]["CarScreenName"]
        except (KeyError, IndexError, TypeError):
            car = None
        self._info = SessionInfo(
            sim="iRacing",
            track_name=weekend.get("TrackDisplayName") or weekend.get("TrackName"),
            track_config=weekend.get("TrackConfigName") or None,
            track_length_m=_length_m(weekend.get("TrackLength")),
            car=car,
        )
        self._info_update = update
        return self._info


def _length_m(text: object) -> float | None:
    """`5.75 km` (or `3.1 mi`) in metres."""
    if not isinstance(text, str):
        return None
    number, _, unit = text.strip().partition(" ")
    try:
        value = float(number)
    except ValueError:
        return None
    return value * (1609.344 if unit.startswith("mi") else 1000.0)
