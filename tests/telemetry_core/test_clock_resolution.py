"""Giving samples their clock against the session: timestamps from its start, the server's time between them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pitbox.errors import Invalid
from pitbox.telemetry.clock import epoch_seconds, resolve_clock
from pitbox.telemetry.models import IngestBatch, PendingClock

START = datetime(2026, 5, 1, 14, 0, tzinfo=UTC)
NAN = np.nan


def batch(t: list[float], stamps: list[float] | None = None, body: float | None = None) -> IngestBatch:
    pending = PendingClock(None if stamps is None else np.array(stamps), body, "samples")
    columns = {"t": np.array(t), "speed": np.arange(len(t), dtype=np.float64)}
    return IngestBatch(uuid.uuid4(), uuid.uuid4(), "seq:1", columns, pending=pending)


def resolved(raw: IngestBatch, received_s: float, last_t: float | None = None) -> IngestBatch:
    received = START + timedelta(seconds=received_s)
    return resolve_clock(raw, started_at=START, received_at=received, last_t=last_t)


def at(seconds: float) -> float:
    return START.timestamp() + seconds


def test_iso_and_epoch_milliseconds_name_the_same_moment() -> None:
    assert epoch_seconds("2026-05-01T16:00:00+02:00", "timestamp") == START.timestamp()
    assert epoch_seconds("2026-05-01T14:00:00", "timestamp") == START.timestamp()  # no offset: UTC
    assert epoch_seconds(START.timestamp() * 1000, "timestamp") == START.timestamp()


def test_samples_without_a_clock_sit_between_their_neighbours() -> None:
    # Received at 50 s, but sent between samples of 10 s and 20 s: kept in order between them.
    done = resolved(batch([10.0, NAN, NAN, 20.0, NAN]), received_s=50.0)
    assert done.columns["t"].tolist() == [10.0, 20.0, 20.0, 20.0, 50.0]
    assert done.clock == "mixed" and done.pending is None
    early = resolved(batch([10.0, NAN, 20.0]), received_s=15.0)
    assert early.columns["t"].tolist() == [10.0, 15.0, 20.0]


def test_the_server_clock_never_goes_before_the_sessions_last_sample() -> None:
    assert resolved(batch([NAN, NAN]), received_s=5.0, last_t=90.0).columns["t"].tolist() == [90.0, 90.0]
    assert resolved(batch([NAN]), received_s=5.0, last_t=None).columns["t"].tolist() == [5.0]


def test_a_timestamp_a_little_before_the_start_counts_as_the_start() -> None:
    done = resolved(batch([NAN, NAN], stamps=[at(-4.0), at(1.5)]), received_s=9.0)
    assert done.columns["t"].tolist() == [0.0, 1.5]
    assert done.clock == "timestamp"


def test_the_bodys_timestamp_serves_samples_without_their_own() -> None:
    done = resolved(batch([NAN, NAN], stamps=[at(2.0), NAN], body=at(3.0)), received_s=9.0)
    assert done.columns["t"].tolist() == [2.0, 3.0]


@pytest.mark.parametrize(
    ("raw", "field", "code"),
    [
        (batch([NAN], stamps=[at(-301.0)]), "samples[0].timestamp", "timestamp_out_of_range"),
        (batch([NAN], body=at(32 * 86_400.0)), "timestamp", "timestamp_out_of_range"),
        (batch([5.0, NAN], stamps=[NAN, at(4.0)]), "samples[1].timestamp", "absurd_time"),
        (batch([5.0, NAN, 4.0]), "samples[2].t", "absurd_time"),
    ],
)
def test_clocks_that_disagree_or_lie_far_from_the_session_are_refused(
    raw: IngestBatch, field: str, code: str
) -> None:
    with pytest.raises(Invalid) as refused:
        resolved(raw, received_s=4.5)
    assert refused.value.code == code
    assert refused.value.details == [{"field": field, "message": refused.value.details[0]["message"]}]
