"""The relay's one status line on stderr (rewritten in place on a terminal), or JSON lines with --log-json."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import orjson

__all__ = ["StatusLine"]


class StatusLine:
    """Shows the relay's counters; `event` reports a happening (a line of its own, above the status)."""

    def __init__(self, *, quiet: bool = False, log_json: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.log_json = log_json
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._last_plain = 0.0
        self._shown = False

    def event(self, name: str, fields: dict[str, Any], *, loud: bool = False) -> None:
        """One event; `loud` ones (the spool full, a rejected batch) are shown even with --quiet."""
        if self.log_json:
            self._write(
                orjson.dumps({"event": name, "at": round(time.time(), 3), **fields}, default=str).decode()
                + "\n"
            )
        elif loud or not self.quiet:
            details = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
            prefix = "relay: WARNING " if loud else "relay: "
            self._write(("\r\x1b[K" if self._shown else "") + f"{prefix}{name} {details}\n")
            self._shown = False

    def update(self, counters: dict[str, Any]) -> None:
        """The status now: packets/s, spooled, sent, acknowledged, backlog, last error."""
        if self.log_json:
            self._write(
                orjson.dumps({"event": "status", "at": round(time.time(), 3), **counters}).decode() + "\n"
            )
            return
        if self.quiet:
            return
        line = (
            f"{counters['packetsPerS']:6.0f} pkt/s  spooled {counters['spooled']}  sent {counters['sent']}"
            f"  acked {counters['acked']}  backlog {counters['backlog']}"
            + (f"  skipped {counters['skipped']}" if counters.get("skipped") else "")
            + (f"  DROPPED {counters['dropped']} (spool full)" if counters.get("dropped") else "")
            + (f"  last error: {counters['lastError']}" if counters.get("lastError") else "")
        )
        if self._tty:
            self._write("\r\x1b[K" + line)
            self._shown = True
        elif time.monotonic() - self._last_plain >= 10.0:
            self._last_plain = time.monotonic()
            self._write(line + "\n")

    def close(self) -> None:
        """End the status line with a newline."""
        if self._shown:
            self._write("\n")
            self._shown = False

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
