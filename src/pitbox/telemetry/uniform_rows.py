"""Typed decoding of the usual ingest body: a batch of rows that all carry the same channels, with a batch key.

orjson turns a 600 × 40 body into 24,000 Python floats inside 600 dicts, and the checks then gather them into
columns. msgspec, told the channels (a struct with one `float` field per channel, built once per channel list
and kept), decodes the same body straight into structs and checks every value is a number as it reads; the
values then go into one matrix in one numpy call. Together that takes about 60% as long (bench/ingest_parts.py).

Anything else is not this path's business: a row with a missing or extra channel, a null, a bool, a string,
a `timestamp` (the sample's clock, not a channel), the `data` or `columns` shapes, any other top-level field
(the body's `timestamp` too), no `seq` or `batchId`, a number beyond float64, text that is not UTF-8, deep
nesting. `UniformRows.decode` answers None for those and the general path
(`ingest.parse_batch`) reads the body and names what is wrong, so both paths accept and refuse the same
bodies (tests/telemetry_core/test_uniform_row_decoding.py holds them to it).
"""

from __future__ import annotations

import itertools
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import orjson

from pitbox.telemetry.models import MAX_CHANNELS, MAX_SAMPLES, FloatArray

# The first sample of `samples`: what the body's other samples must match. A wrong guess (the pattern inside a
# string, say) costs nothing but the fallback: the typed decode checks the whole body against it.
_FIRST_SAMPLE = re.compile(rb'"samples"\s*:\s*\[\s*(\{[^{}]*\})')
# msgspec cannot rename a field to a name holding these; such channels take the general path.
_UNNAMEABLE = re.compile(r'[\x00-\x1f"\\]')


@dataclass(frozen=True)
class UniformBatch:
    """What the typed decode read: the message's own fields (as the general path would see them) and the
    columns, not yet checked beyond each value being a finite-or-not float."""

    message: dict[str, Any]
    columns: dict[str, FloatArray]


class UniformRows:
    """Typed decoders for the channel lists seen lately (one per list, the least recently used dropped)."""

    def __init__(self, capacity: int = 32) -> None:
        self._capacity = capacity
        self._decoders: OrderedDict[tuple[str, ...], msgspec.json.Decoder[Any]] = OrderedDict()

    def __len__(self) -> int:
        """Channel lists whose decoder is kept."""
        return len(self._decoders)

    def decode(self, body: bytes) -> UniformBatch | None:
        """The batch when `body` is a `samples` batch of identical channel lists with `seq` or `batchId`;
        None for any other body (valid or not)."""
        names = _first_sample_names(body)
        if names is None:
            return None
        try:
            message = self._decoder(names).decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
            return None  # the general path names what is wrong (or accepts what msgspec would not)
        samples = message.samples
        if not 0 < len(samples) <= MAX_SAMPLES:
            return None
        if message.seq is None and message.batchId is None:
            return None  # a key-less batch is named by the hash of its rows as the general path reads them
        width = len(names)
        matrix = np.fromiter(
            itertools.chain.from_iterable(map(msgspec.structs.astuple, samples)),
            dtype=np.float64,
            count=len(samples) * width,
        ).reshape(len(samples), width)
        rows = np.ascontiguousarray(matrix.T)
        fields = {"driverId": message.driverId, "sessionId": message.sessionId}
        for optional in ("seq", "batchId", "source"):
            value = getattr(message, optional)
            if value is not None:
                fields[optional] = value
        return UniformBatch(fields, {name: rows[index] for index, name in enumerate(names)})

    def _decoder(self, names: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
        decoder = self._decoders.get(names)
        if decoder is None:
            decoder = self._decoders[names] = msgspec.json.Decoder(_message_type(names))
            while len(self._decoders) > self._capacity:
                self._decoders.popitem(last=False)
        else:
            self._decoders.move_to_end(names)
        return decoder


def _first_sample_names(body: bytes) -> tuple[str, ...] | None:
    found = _FIRST_SAMPLE.search(body)
    if found is None:
        return None
    try:
        first = orjson.loads(found.group(1))
    except orjson.JSONDecodeError:
        return None
    if not 0 < len(first) <= MAX_CHANNELS:
        return None
    for name, value in first.items():
        if type(value) not in (int, float) or _UNNAMEABLE.search(name) or name == "timestamp":
            return None
    return tuple(first)


def _message_type(names: tuple[str, ...]) -> type[msgspec.Struct]:
    # Fields are c0, c1, … renamed to the channels, so any channel name works (it need not be an identifier).
    sample = msgspec.defstruct(
        "Sample",
        [(f"c{index}", float) for index in range(len(names))],
        rename={f"c{index}": name for index, name in enumerate(names)},
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.defstruct(
        "SampleBatch",
        [
            ("driverId", str),
            ("sessionId", str),
            ("samples", list[sample]),  # type: ignore[valid-type]
            ("seq", int | None, None),
            ("batchId", str | None, None),
            ("source", str | None, None),
        ],
        # Any other field (`data` or `columns` beside `samples`, or one the general path ignores but still
        # reads, such as a number beyond float64) is left to the general path: msgspec would skip it unread.
        forbid_unknown_fields=True,
    )
