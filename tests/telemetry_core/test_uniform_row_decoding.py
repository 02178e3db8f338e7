"""Typed decoding of the usual ingest body accepts and refuses exactly what the general path does."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import orjson
import pytest

from pitbox.errors import PitboxError
from pitbox.telemetry.ingest import decode_body, parse_batch, parse_body
from pitbox.telemetry.models import IngestBatch
from pitbox.telemetry.uniform_rows import UniformRows

DRIVER, SESSION = str(uuid.uuid4()), str(uuid.uuid4())


def rows(n: int = 4, **override: Any) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = [
        {"t": 0.1 * i, "speed": 100.0 + i, "gear": 3, "lap": 1, "lapDistPct": 0.01 * i} for i in range(n)
    ]
    samples[-1].update(override)
    return samples


def body(samples: Any = None, **fields: Any) -> bytes:
    message = {
        "driverId": DRIVER,
        "sessionId": SESSION,
        "seq": 7,
        "samples": rows() if samples is None else samples,
    }
    message.update(fields)
    return json.dumps({key: value for key, value in message.items() if value is not ...}).encode()


def general(raw: bytes) -> IngestBatch | PitboxError:
    try:
        return parse_batch(decode_body(raw))
    except PitboxError as error:
        return error


def typed(raw: bytes) -> IngestBatch | PitboxError:
    try:
        return parse_body(raw, UniformRows())
    except PitboxError as error:
        return error


def assert_same(left: IngestBatch | PitboxError, right: IngestBatch | PitboxError) -> None:
    if isinstance(left, PitboxError) or isinstance(right, PitboxError):
        assert type(left) is type(right), (left, right)
        assert (left.code, left.message, left.details) == (right.code, right.message, right.details)  # type: ignore[union-attr]
        return
    assert (left.driver_id, left.session_id, left.batch_key) == (
        right.driver_id,
        right.session_id,
        right.batch_key,
    )
    assert list(left.columns) == list(right.columns)
    for name, values in left.columns.items():
        np.testing.assert_array_equal(values, right.columns[name])
    assert (left.pending is None) == (right.pending is None)
    if left.pending is not None and right.pending is not None:
        assert (left.pending.body_stamp, left.pending.shape) == (
            right.pending.body_stamp,
            right.pending.shape,
        )
        assert (left.pending.stamps is None) == (right.pending.stamps is None)


USUAL = [
    body(),
    body(batchId="relay-1/42", seq=...),
    body(source="iracing", samples=[{"SessionTime": 1.0 + i, "Speed": 50.0, "RPM": 9000} for i in range(3)]),
    body(samples=[{"t": 0.0, "a b": 1}, {"t": 1, "a b": -2.5e-300}]),  # ints, spaces, tiny numbers
    body(samples=[{"t": 0.0, "x": 1.0, "x ": 2.0}]),
    body(samples=[{"t": float(i)} for i in range(10_000)]),
    body(samples=[{"speed": 100.0 + i, "gear": 3} for i in range(4)]),  # no clock: the server's time
]

REFUSED_OR_OTHER = [
    body(rows(speed="fast")),
    body(rows(speed=None)),
    body(rows(speed=True)),
    body(rows(speed=[1, 2])),
    body(rows(t=-5.0)),
    body(rows(t=1e12)),
    body(rows(lap=2.5)),
    body(rows(extra=1.0)),
    body(rows()[:-1] + [{"t": 9.0}]),
    body(samples=[{"t": 0.0, "spe,ed": 1.0}]),
    body(samples=[{"t": 1.0}, {"t": 0.5}]),
    body(samples=[]),
    body(samples=[{"t": float(i)} for i in range(10_001)]),
    body(samples=[{"t": 0.0, **{f"c{i}": 1.0 for i in range(600)}}]),
    body(seq=...),  # no key: named by the hash of its rows
    body(seq=-1),
    body(seq=1.0),
    body(seq=True),
    body(seq=None, batchId="b"),
    body(batchId=17),
    body(batchId=""),
    body(source="gran-turismo"),
    body(source=None),
    body(driverId=None),
    body(driverId="not-a-uuid"),
    body(sessionId=17),
    body(data={"t": 1.0}),
    body(data=None),
    body(columns=None),
    body(samples=[{"t": 0.0, 'q"uote': 1.0}]),
    body(samples=[{"t": 0.0, "back\\slash": 1.0}]),
    body(samples=[{"t": 0.0, "nested": {"a": 1}}]),
    body().replace(b'"speed": 103.0', b'"speed": 1e400'),
    body().replace(b'"speed": 103.0', b'"speed": NaN'),
    body().replace(b'"speed": 103.0', b'"speed": ' + b"9" * 400),
    body().replace(b'"samples"', b'"name": "\\"samples\\": [{\\"z\\": 1}]", "samples"'),
    body() + b" trailing",
    body(batchId="b").replace(b'"batchId": "b"', b'"batchId": "\xc3\x28"'),
    body().replace(DRIVER.encode(), DRIVER.encode()[:-1] + b"\xff"),
    body().replace(b'"speed": 103.0', b'"\xff": 103.0'),
    body(x=1.0).replace(b'"x": 1.0', b'"x": ' + b"[" * 2000 + b"]" * 2000),
    body(x=1.0).replace(b'"x": 1.0', b'"x": 1e400'),
    body(x="\u00e9").replace(b'"x": "\\u00e9"', b'"x": "\xff"'),
    body(x=1.0),  # a field the general path ignores
    body(rows(timestamp=1_689_597_296_000)),  # the sample's clock, not a channel
    body(samples=[{"timestamp": 1_689_597_296_000 + i, "speed": 1.0} for i in range(3)]),
    body(samples=[{"speed": 1.0}, {"speed": 2.0, "timestamp": "2023-07-17T12:34:56Z"}]),
    body(samples=[{"timestamp": "not a date", "speed": 1.0}]),
    body(timestamp="2023-07-17T12:34:56Z"),
    body(timestamp="2023-07-17T12:34:56Z", samples=[{"speed": 1.0}]),
    body()[:-5],
    b'[{"samples": [{"t": 1}]}]',
]


@pytest.mark.parametrize("raw", USUAL)
def test_usual_body_is_decoded_typed_to_the_same_batch(raw: bytes) -> None:
    assert UniformRows().decode(raw) is not None
    assert_same(typed(raw), general(raw))


@pytest.mark.parametrize("raw", REFUSED_OR_OTHER)
def test_other_bodies_get_the_general_paths_answer(raw: bytes) -> None:
    assert_same(typed(raw), general(raw))


def test_decoders_are_kept_for_the_latest_channel_lists_only() -> None:
    uniform = UniformRows(capacity=2)
    for names in (["t", "a"], ["t", "b"], ["t", "c"], ["t", "a"]):
        samples = [{name: 1.0 for name in names}]
        assert uniform.decode(
            orjson.dumps({"driverId": DRIVER, "sessionId": SESSION, "seq": 1, "samples": samples})
        )
    assert len(uniform) == 2
