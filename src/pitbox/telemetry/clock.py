"""The clock of each ingested sample: its own `t`, else a `timestamp`, else when the server received it.

In that order, per sample (docs/telemetry.md, The sample clock):

1. `t` (or the source's alias of it), seconds since the session started, as the sample says;
2. a `timestamp` on the sample, else one at the top of the body: ISO 8601 (an offset such as `Z` or `+02:00`;
   without one it is read as UTC) or epoch milliseconds, counted in seconds from the session's start;
3. the time the server stores the batch, in seconds since the session started, never earlier than the sample
   before it (in the batch, or the session's last stored sample) nor later than the next sample with a clock.

A worker process reads the first two (`epoch_seconds`, `timestamps`) without knowing the session; the server
finishes the batch against the locked session row (`resolve_clock`). Only batches with a sample lacking `t`
take that second step: the usual batch, `t` on every sample, is resolved and encoded in the worker as before.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

import numpy as np

from pitbox.errors import AbsurdTime
from pitbox.telemetry.errors import InvalidTimestamp, TimestampOutOfRange
from pitbox.telemetry.models import MAX_T, FloatArray, IngestBatch

Clock = Literal["sample", "timestamp", "server", "mixed"]

#: A `timestamp` up to this long before the session's start is a device clock a little behind the server's:
#: its sample counts as t = 0. Further before the start, or more than MAX_T (31 days) after it, it is refused.
TIMESTAMP_BEFORE_START_S: Final = 300.0
#: Longest `timestamp` string read (the longest ISO 8601 form is 32 characters).
MAX_TIMESTAMP_CHARS: Final = 64
_EXPECTED = "must be a date and time (ISO 8601 such as 2023-07-17T12:34:56Z) or epoch milliseconds"
#: Epoch seconds of the dates ISO 8601 can write (years 1 to 9999): a number outside names no date.
EPOCH_RANGE_S: Final = (
    datetime(1, 1, 1, tzinfo=UTC).timestamp(),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC).timestamp(),
)


def epoch_seconds(value: Any, field: str) -> float:
    """A `timestamp` as seconds since 1970 (UTC): an ISO 8601 string or a number of epoch milliseconds."""
    if type(value) in (int, float):
        seconds = value / 1000.0 if abs(value) <= sys.float_info.max else math.inf
        if math.isfinite(seconds) and EPOCH_RANGE_S[0] <= seconds <= EPOCH_RANGE_S[1]:
            return float(seconds)
    elif isinstance(value, str) and len(value) <= MAX_TIMESTAMP_CHARS:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    raise InvalidTimestamp.at(field, _EXPECTED)


def timestamps(values: Sequence[Any], field: Callable[[int], str]) -> FloatArray:
    """Per sample, its `timestamp` as epoch seconds (NaN where it has none: None)."""
    stamps = np.full(len(values), np.nan)
    for index, value in enumerate(values):
        if value is not None:
            stamps[index] = epoch_seconds(value, field(index))
    return stamps


def clock_field(shape: str, index: int, name: str) -> str:
    """The request field of sample `index`'s `t` or `timestamp` (`name`) in a body of this shape."""
    if shape == "columns":
        return f"columns.{name}[{index}]"
    return f"data.{name}" if shape == "data" else f"samples[{index}].{name}"


def resolve_clock(
    batch: IngestBatch, *, started_at: datetime, received_at: datetime, last_t: float | None
) -> IngestBatch:
    """`batch` with every sample's `t` (422 naming the field for a timestamp too far from the session's start,
    or a batch whose clocks go backwards), its `clock` said, and no pending clock left."""
    pending = batch.pending
    if pending is None:
        return batch
    columns = batch.columns
    t = columns["t"].copy()
    own = ~np.isnan(t)
    stamps = pending.stamps if pending.stamps is not None else np.full(t.size, np.nan)
    from_sample = ~own & ~np.isnan(stamps)
    from_body = ~own & ~from_sample & (pending.body_stamp is not None)
    if pending.body_stamp is not None:
        stamps = np.where(from_body, pending.body_stamp, stamps)
    stamped = from_sample | from_body
    start = started_at.timestamp()
    offsets = stamps - start
    too_far = np.flatnonzero(stamped & ((offsets < -TIMESTAMP_BEFORE_START_S) | (offsets > MAX_T)))
    if too_far.size:
        index = int(too_far[0])
        field = clock_field(pending.shape, index, "timestamp") if from_sample[index] else "timestamp"
        raise TimestampOutOfRange.at(
            field,
            f"is {_distance(offsets[index])} the session's start ({started_at.isoformat()}); a timestamp may be "
            f"at most {TIMESTAMP_BEFORE_START_S:.0f} s before it and {MAX_T / 86_400:.0f} days after it",
        )
    t[stamped] = np.maximum(offsets[stamped], 0.0)
    server = ~own & ~stamped
    if server.any():
        t[server] = _server_times(t, server, (received_at - started_at).total_seconds(), last_t)
    backwards = np.flatnonzero(np.diff(t) < 0)
    if backwards.size:
        index = int(backwards[0]) + 1
        if server[index]:  # squeezed below the sample before it by the next clocked one: that one goes back
            index = int(np.flatnonzero(~server[index:])[0]) + index
        name = "t" if own[index] else "timestamp"
        field = "timestamp" if from_body[index] else clock_field(pending.shape, index, name)
        raise AbsurdTime.at(field, "goes backwards within the batch")
    kinds = [
        kind for kind, used in (("sample", own), ("timestamp", stamped), ("server", server)) if used.any()
    ]
    clock: Clock = "mixed" if len(kinds) > 1 else kinds[0]  # type: ignore[assignment]
    return dataclasses.replace(batch, columns={**columns, "t": t}, pending=None, clock=clock)


def _server_times(
    t: FloatArray, server: np.ndarray[Any, Any], received: float, last_t: float | None
) -> FloatArray:
    """The receive time for each sample without a clock, kept between its neighbours' times."""
    positions = np.arange(t.size)
    before = np.maximum.accumulate(np.where(server, -1, positions))
    after = np.minimum.accumulate(np.where(server, t.size, positions)[::-1])[::-1]
    floor = np.where(before >= 0, t[np.maximum(before, 0)], max(last_t or 0.0, 0.0))
    ceiling = np.where(after < t.size, t[np.minimum(after, t.size - 1)], np.inf)
    times: FloatArray = np.minimum(np.maximum(received, floor), ceiling)[server]
    return times


def _distance(seconds: float) -> str:
    days = abs(seconds) / 86_400
    amount = f"{days:.0f} days" if days >= 2 else f"{abs(seconds):.0f} s"
    return f"{amount} {'before' if seconds < 0 else 'after'}"
