"""Errors of the relay agent, one class per situation; `code` is what clients see."""

from __future__ import annotations

from pitbox.errors import Invalid


class BadSnapshot(Invalid):
    """An iRacing memory snapshot file that holds no telemetry variables."""

    code = "bad_snapshot"
