"""Errors of telemetry ingest and reads, one class per situation; `code` is what clients see."""

from __future__ import annotations

from pitbox.errors import BadRequest, Conflict, Invalid


class BadPoints(Invalid):
    """A downsampling or comparison asked for fewer than 2 points."""

    code = "bad_points"


class BadSplits(Invalid):
    """Sector splits that are not increasing fractions between 0 and 1."""

    code = "bad_splits"


class CorruptChunk(BadRequest):
    """A stored or sent telemetry chunk that cannot be decoded."""

    code = "corrupt_chunk"


class InvalidTelemetry(Invalid):
    """A telemetry body or sample that breaks a rule of its shape (the field is named)."""

    code = "invalid_telemetry"


class InvalidTimestamp(Invalid):
    """A sample's `timestamp` that is neither ISO 8601 nor epoch milliseconds in years 1–9999."""

    code = "invalid_timestamp"


class LapTooShort(Invalid):
    """A lap with fewer than 2 samples placed on the lap."""

    code = "lap_too_short"


class MissingChannels(Invalid):
    """Data without the channels the operation needs (`t`, a lap position)."""

    code = "missing_channels"


class ParquetUnavailable(Invalid):
    """`format=parquet` on a server without pyarrow."""

    code = "parquet_unavailable"


class RaggedChunk(Invalid):
    """Channels of one batch or chunk with different numbers of samples."""

    code = "ragged_chunk"


class SessionEnded(Conflict):
    """Telemetry sent to a session that has ended."""

    code = "session_ended"


class TelemetryValueNotNumeric(Invalid):
    """A telemetry value that is not a number."""

    code = "telemetry_value_not_numeric"


class TimestampOutOfRange(Invalid):
    """A sample's `timestamp` too far before or after its session's start."""

    code = "timestamp_out_of_range"


class TooManyChannels(Invalid):
    """More channels in one batch, sample or chunk than the limit."""

    code = "too_many_channels"


class TooManySamples(Invalid):
    """More samples in one batch, chunk or read than the limit."""

    code = "too_many_samples"


class UnknownChannels(Invalid):
    """Channels (asked for or filtered on) that the session does not have."""

    code = "unknown_channels"
