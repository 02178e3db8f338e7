"""Reading and checking one ingest message by hand (it is the hot path: no pydantic, one pass per sample).

Three shapes carry samples: the SPEC's single sample `{"driverId","sessionId","data":{…}}`, a batch of rows
`{…, "samples":[{…},…]}` and a batch of columns `{…, "columns":{"t":[…],"speed":[…]}}`. A batch names itself
with `batchId` (any string) or `seq` (an integer); without either, its content is its name, so an identical
retry is still stored once (unless a sample has no clock at all: then only the server's time tells two such
bodies apart, and each is stored). Every error is a 422 that names the offending field (`samples[12].speed`).

A sample's clock is its `t`, else a `timestamp` (its own, else the body's), else the time the server stores
it (`clock.py`). `timestamp` is that clock, never a channel.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from pitbox.errors import AbsurdTime, InvalidJson, PayloadTooLarge
from pitbox.telemetry.aliases import ALIASES, to_canonical_channels
from pitbox.telemetry.clock import epoch_seconds, timestamps
from pitbox.telemetry.codec import rows_to_columns
from pitbox.telemetry.errors import InvalidTelemetry, TooManyChannels, TooManySamples
from pitbox.telemetry.models import (
    MAX_BATCH_KEY,
    MAX_BODY_BYTES,
    MAX_CHANNEL_NAME,
    MAX_CHANNELS,
    MAX_SAMPLES,
    MAX_T,
    FloatArray,
    IngestBatch,
    PendingClock,
)
from pitbox.telemetry.uniform_rows import UniformRows

MAX_LAP = 1_000_000
_NUMERIC = frozenset({int, float, bool, type(None)})
# Channel names end up in CSV headers and in query filters (`speed>=250`): keep those characters out.
_CHANNEL_NAME = re.compile(r'^[^\x00-\x1f,"=<>!&;]{1,' + str(MAX_CHANNEL_NAME) + "}$")
#: The sample's clock when it has no `t` (ISO 8601 or epoch ms): read by `clock.py`, never stored as a channel.
TIMESTAMP = "timestamp"


def parse_body(body: bytes, uniform_rows: UniformRows) -> IngestBatch:
    """`parse_batch` of a raw JSON body (400/413/422 for an unreadable, too large or wrong one).

    The usual body (rows that all carry the same channels) is read by typed decoding; any other goes through
    orjson and `parse_batch`, which names what is wrong. Both accept and refuse the same bodies.
    """
    _check_size(body)
    uniform = uniform_rows.decode(body)
    if uniform is None:
        return parse_batch(decode_body(body))
    message = uniform.message
    driver_id, session_id = _uuid(message, "driverId"), _uuid(message, "sessionId")
    # Typed decoding refuses numbers beyond float64 (the general path then names them): every value is finite.
    _check_names(uniform.columns, lambda name, index: f"{_sample_label(index)}.{name}")
    return _checked_batch(message, driver_id, session_id, uniform.columns, "samples", None, None)


def decode_body(body: bytes) -> Any:
    """The JSON of a request body; 422 naming the field for NaN/Infinity, 400 for anything else unreadable."""
    _check_size(body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # orjson refuses NaN, Infinity and 1e400 outright; the slow parser reads them so we can say where.
        try:
            lenient = json.loads(body)
        except (ValueError, RecursionError):
            raise InvalidJson(f"the body is not JSON: {error}") from None
        field = _non_finite_path(lenient, "")
        if field is not None:
            raise InvalidTelemetry.at(
                field or "body", "must be a finite number (NaN and Infinity are not JSON)"
            ) from None
        raise InvalidJson(f"the body is not JSON: {error}") from None


def _check_size(body: bytes) -> None:
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"a telemetry body may hold at most {MAX_BODY_BYTES} bytes")


def _sample_label(index: int) -> str:
    return f"samples[{index}]"


def _data_label(_: int) -> str:
    return "data"


def _column_t_label(index: int) -> str:
    return f"columns.t[{index}]"


_LABELS: dict[str, Callable[[int], str]] = {
    "data": _data_label,
    "samples": _sample_label,
    "columns": _column_t_label,
}


def _non_finite_path(value: Any, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _non_finite_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def parse_batch(message: Any) -> IngestBatch:
    """Check a decoded ingest message and turn it into an `IngestBatch` (canonical columns)."""
    if not isinstance(message, dict):
        raise InvalidTelemetry.at("body", "must be a JSON object")
    driver_id = _uuid(message, "driverId")
    session_id = _uuid(message, "sessionId")
    shapes = [name for name in ("data", "samples", "columns") if name in message]
    if len(shapes) != 1:
        raise InvalidTelemetry.at(
            "samples", "give exactly one of data (one sample), samples (rows) or columns"
        )
    shape = shapes[0]
    payload = message[shape]
    if shape == "data":
        if not isinstance(payload, dict):
            raise InvalidTelemetry.at("data", "must be an object of channel: number")
        columns, stamps = _columns_of_rows([payload], _data_label)
    elif shape == "samples":
        columns, stamps = _columns_of_rows(payload, _sample_label)
    else:
        columns, stamps = _columns_of_columns(payload)
    return _checked_batch(message, driver_id, session_id, columns, shape, stamps, payload)


def _checked_batch(
    message: dict[str, Any],
    driver_id: uuid.UUID,
    session_id: uuid.UUID,
    columns: dict[str, FloatArray],
    shape: str,
    stamps: FloatArray | None,
    payload: Any,
) -> IngestBatch:
    """The checks after the shape's own: source names, clock, lap counter, batch key (`payload` is hashed for
    a key-less batch). `stamps` are the samples' own timestamps (epoch seconds, NaN where none)."""
    columns = _canonical(message, columns)
    label = _LABELS[shape]
    body_stamp = None if message.get(TIMESTAMP) is None else epoch_seconds(message[TIMESTAMP], TIMESTAMP)
    pending = _check_time(columns, label, shape, stamps, body_stamp)
    if pending is not None and "t" not in columns:
        columns = {"t": np.full(next(iter(columns.values())).size, np.nan), **columns}
    _check_lap_counter(columns, label)
    return IngestBatch(
        driver_id=driver_id,
        session_id=session_id,
        batch_key=_batch_key(message, payload, pending, columns),
        columns=columns,
        pending=pending,
    )


def _uuid(message: dict[str, Any], field: str) -> uuid.UUID:
    value = message.get(field)
    if value is None:
        raise InvalidTelemetry.at(field, "is required")
    if not isinstance(value, str):
        raise InvalidTelemetry.at(field, "must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidTelemetry.at(field, "must be a UUID string") from None


def _columns_of_rows(
    rows: Any, label: Callable[[int], str]
) -> tuple[dict[str, FloatArray], FloatArray | None]:
    """The rows' columns and their own timestamps (None when no row has one)."""
    if not isinstance(rows, list):
        raise InvalidTelemetry.at("samples", "must be a list of samples")
    if not rows:
        raise InvalidTelemetry.at("samples", "must hold at least one sample")
    if len(rows) > MAX_SAMPLES:
        raise TooManySamples.at("samples", f"at most {MAX_SAMPLES} samples per batch")
    # A row with a timestamp the first lacks has a different length: the careful path takes it.
    columns = None if type(rows[0]) is dict and TIMESTAMP in rows[0] else _uniform_rows_to_columns(rows)
    stamps = None
    if columns is None:
        columns, stamps = _mixed_rows_to_columns(rows, label)
    if len(columns) > MAX_CHANNELS:
        raise TooManyChannels.at("samples", f"at most {MAX_CHANNELS} channels per batch")
    _check_values(columns, lambda name, index: f"{label(index)}.{name}")
    return columns, stamps


def _uniform_rows_to_columns(rows: list[Any]) -> dict[str, FloatArray] | None:
    """The fast path: every row a dict of the same numbers under the same names; None when any is not."""
    first = rows[0]
    if type(first) is not dict or not 0 < len(first) <= MAX_CHANNELS:
        return None
    names = list(first)
    getter = itemgetter(*names)
    try:
        values = [getter(row) for row in rows]
    except (KeyError, TypeError):
        return None
    # A row with every name of the first and no other has the first's length.
    if sum(map(len, rows)) != len(names) * len(rows):
        return None
    # numpy infers a numeric dtype only when every value is a number (None gives object, a string text).
    try:
        matrix = np.array(values)
    except ValueError:  # a value that is itself a list
        return None
    if matrix.dtype.kind not in "fiub" or matrix.ndim != (1 if len(names) == 1 else 2):
        return None
    matrix = matrix.astype(np.float64, copy=False).reshape(len(rows), len(names))
    columns = np.ascontiguousarray(matrix.T)
    return {name: columns[index] for index, name in enumerate(names)}


def _mixed_rows_to_columns(
    rows: list[Any], label: Callable[[int], str]
) -> tuple[dict[str, FloatArray], FloatArray | None]:
    """The careful path: rows with missing values or different channels, timestamps, or a wrong value to name."""
    stamped = False
    for index, row in enumerate(rows):
        if type(row) is not dict:
            raise InvalidTelemetry.at(label(index), "must be an object of channel: number")
        if len(row) > MAX_CHANNELS:
            raise TooManyChannels.at(label(index), f"at most {MAX_CHANNELS} channels per sample")
        if not _NUMERIC.issuperset(map(type, row.values())):
            wrong = [key for key, value in row.items() if type(value) not in _NUMERIC and key != TIMESTAMP]
            if wrong:
                raise InvalidTelemetry.at(f"{label(index)}.{wrong[0]}", "must be a number or null")
        stamped = stamped or TIMESTAMP in row
    if not stamped:
        return _rows_to_columns(rows), None
    stamps = timestamps([row.get(TIMESTAMP) for row in rows], lambda index: f"{label(index)}.{TIMESTAMP}")
    bare = [{name: value for name, value in row.items() if name != TIMESTAMP} for row in rows]
    return _rows_to_columns(bare), stamps


def _rows_to_columns(rows: Sequence[dict[str, Any]]) -> dict[str, FloatArray]:
    if not any(rows):  # samples without any channel: a clock is all they get
        return {"t": np.full(len(rows), np.nan)}
    return rows_to_columns(rows)


def _columns_of_columns(raw: Any) -> tuple[dict[str, FloatArray], FloatArray | None]:
    """The columns and the samples' own timestamps (`columns.timestamp`; None without it)."""
    if not isinstance(raw, dict) or not raw:
        raise InvalidTelemetry.at("columns", "must be an object of channel: [numbers]")
    if len(raw) > MAX_CHANNELS:
        raise TooManyChannels.at("columns", f"at most {MAX_CHANNELS} channels per batch")
    length: int | None = None
    columns: dict[str, FloatArray] = {}
    stamps = None
    for name, values in raw.items():
        if not isinstance(values, list):
            raise InvalidTelemetry.at(f"columns.{name}", "must be a list of numbers")
        if length is None:
            length = len(values)
            if not 1 <= length <= MAX_SAMPLES:
                raise TooManySamples.at(f"columns.{name}", f"must hold 1 to {MAX_SAMPLES} samples")
        elif len(values) != length:
            raise InvalidTelemetry.at(
                f"columns.{name}", f"has {len(values)} values where the first channel has {length}"
            )
        if name == TIMESTAMP:
            stamps = timestamps(values, lambda index: f"columns.{TIMESTAMP}[{index}]")
            continue
        if not _NUMERIC.issuperset(map(type, values)):
            index = next(i for i, value in enumerate(values) if type(value) not in _NUMERIC)
            raise InvalidTelemetry.at(f"columns.{name}[{index}]", "must be a number or null")
        columns[name] = np.array(values, dtype=np.float64)
    _check_values(columns, lambda name, index: f"columns.{name}[{index}]")
    if not columns:  # only timestamps: a clock is all the samples get
        columns["t"] = np.full(length or 0, np.nan)
    return columns, stamps


def _check_values(columns: dict[str, FloatArray], field: Callable[[str, int], str]) -> None:
    _check_names(columns, field)
    for name, values in columns.items():
        infinite = np.flatnonzero(np.isinf(values))
        if infinite.size:
            raise InvalidTelemetry.at(field(name, int(infinite[0])), "must be a finite number")


def _check_names(columns: dict[str, FloatArray], field: Callable[[str, int], str]) -> None:
    for name, values in columns.items():
        if not isinstance(name, str) or not _CHANNEL_NAME.match(name):
            present = np.flatnonzero(~np.isnan(values))
            raise InvalidTelemetry.at(
                field(str(name), int(present[0]) if present.size else 0),
                f'a channel name has 1 to {MAX_CHANNEL_NAME} characters, none of ,"=<>!&;',
            )


def _canonical(message: dict[str, Any], columns: dict[str, FloatArray]) -> dict[str, FloatArray]:
    """Rename a known source's channels (and convert their units) when the message says where it comes from."""
    source = message.get("source")
    if source is None:
        return columns
    if not isinstance(source, str) or source not in ALIASES:
        raise InvalidTelemetry.at("source", f"must be one of {', '.join(sorted(ALIASES))}")
    return {
        name: np.asarray(values, dtype=np.float64)
        for name, values in to_canonical_channels(columns, source).items()
    }


def _check_time(
    columns: dict[str, FloatArray],
    label: Callable[[int], str],
    shape: str,
    stamps: FloatArray | None,
    body_stamp: float | None,
) -> PendingClock | None:
    """Check the samples' own `t`; None when every sample has one (the batch's clock is complete), else what
    the server needs to give the others theirs (their timestamps are checked against the session there)."""
    t = columns.get("t")
    missing = None if t is None else np.isnan(t)
    if t is not None:
        absurd = np.flatnonzero((t < 0) | (t > MAX_T))  # NaN compares False: only the values given
        if absurd.size:
            raise AbsurdTime.at(_t_field(label, int(absurd[0])), f"must be between 0 and {MAX_T:.0f} seconds")
        assert missing is not None
        if not missing.any():
            backwards = np.flatnonzero(np.diff(t) < 0)
            if backwards.size:
                index = int(backwards[0]) + 1
                raise AbsurdTime.at(_t_field(label, index), "goes backwards within the batch")
            return None
    if stamps is not None and missing is not None:
        stamps = np.where(missing, stamps, np.nan)
    return PendingClock(stamps, body_stamp, shape)


def _check_lap_counter(columns: dict[str, FloatArray], label: Callable[[int], str]) -> None:
    lap = columns.get("lap")
    if lap is None:
        return
    wrong = np.flatnonzero(~np.isnan(lap) & ((lap != np.rint(lap)) | (lap < 0) | (lap > MAX_LAP)))
    if wrong.size:
        where = label(int(wrong[0]))
        field = f"columns.lap[{int(wrong[0])}]" if where.startswith("columns.") else f"{where}.lap"
        raise InvalidTelemetry.at(field, f"must be a whole number between 0 and {MAX_LAP}")


def _t_field(label: Callable[[int], str], index: int) -> str:
    where = label(index)
    return where if where.startswith("columns.") else f"{where}.t"


def _batch_key(
    message: dict[str, Any], payload: Any, pending: PendingClock | None, columns: dict[str, FloatArray]
) -> str:
    batch_id = message.get("batchId")
    if batch_id is not None:
        if not isinstance(batch_id, str) or not 1 <= len(batch_id) <= MAX_BATCH_KEY - 3:
            raise InvalidTelemetry.at("batchId", f"must be a string of 1 to {MAX_BATCH_KEY - 3} characters")
        return f"id:{batch_id}"
    seq = message.get("seq")
    if seq is not None:
        if type(seq) is not int or not 0 <= seq < 2**63:
            raise InvalidTelemetry.at("seq", "must be a non-negative integer")
        return f"seq:{seq}"
    content = payload
    if pending is not None:
        if pending.body_stamp is None and _has_unclocked_sample(pending, columns["t"]):
            # Only the time it arrives tells this body from the same one sent again later: each is a sample.
            return f"rcv:{uuid.uuid4().hex}"
        content = [payload, message.get(TIMESTAMP)]
    digest = hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=20).hexdigest()
    return f"sha:{digest}"


def _has_unclocked_sample(pending: PendingClock, t: FloatArray) -> bool:
    """Some sample has neither `t` nor a timestamp of its own (nor does the body)."""
    if pending.stamps is None:
        return True
    return bool((np.isnan(t) & np.isnan(pending.stamps)).any())
