"""Errors of reading recordings, one class per situation; `code` is what clients see."""

from __future__ import annotations

from pitbox.errors import Invalid


class CorruptRecording(Invalid):
    """A recording whose bytes do not hold what its format promises."""

    code = "corrupt_recording"


class EmptyRecording(Invalid):
    """A recording with no samples."""

    code = "empty_recording"


class InvalidTime(Invalid):
    """A CSV recording whose `t` is missing in a row or goes backwards."""

    code = "invalid_time"


class MissingTiming(Invalid):
    """A packet capture without the timing file its packets need (they carry no clock)."""

    code = "missing_timing"


class RecordingWithoutTime(Invalid):
    """A recording with no `t` column."""

    code = "recording_without_time"


class UnsupportedRecording(Invalid):
    """A file that is none of the recordings this service reads."""

    code = "unsupported_recording"
