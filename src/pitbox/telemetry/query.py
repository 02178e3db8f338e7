"""The telemetry read contract: parsing `channels=…&lap=…&from=…&to=…&points=…&format=…&cursor=…&limit=…` and
OpenF1-style channel filters (`speed>=250&brake>0.5`), the paging cursor, and shaping columns for JSON and CSV
(Parquet is written by `parquet.py`).

Pure functions over numpy arrays: nothing here touches the database.
"""

from __future__ import annotations

import base64
import binascii
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import unquote_plus

import numpy as np
import numpy.typing as npt
import orjson

from pitbox.errors import BadCursor
from pitbox.telemetry.codec import DEFAULT_EXACT_CHANNELS
from pitbox.telemetry.errors import InvalidTelemetry, UnknownChannels
from pitbox.telemetry.models import FloatArray

DEFAULT_LIMIT: Final = 10_000
MAX_LIMIT: Final = 100_000
MAX_POINTS: Final = 100_000
#: Largest number of samples a downsampled answer may be computed from (about 20 hours at 60 Hz).
MAX_DOWNSAMPLE_INPUT: Final = 5_000_000

Format = Literal["json", "csv", "parquet"]
FORMATS: Final[tuple[Format, ...]] = ("json", "csv", "parquet")
_RESERVED = frozenset({"channels", "lap", "from", "to", "points", "format", "cursor", "limit"})
_TERM = re.compile(r"^(?P<name>[^<>=!]+?)(?P<op>>=|<=|!=|>|<|=)(?P<value>.*)$")
_OPERATORS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class ChannelFilter:
    """One condition on a channel; a sample without that channel (or NaN there) never matches."""

    channel: str
    op: str
    value: float

    def matches(self, values: FloatArray) -> npt.NDArray[np.bool_]:
        """Which samples satisfy the condition."""
        result: npt.NDArray[np.bool_] = _OPERATORS[self.op](values, self.value) & ~np.isnan(values)
        return result


@dataclass(frozen=True)
class ReadPosition:
    """Where a page starts: sample `offset` of chunk `chunk_no`."""

    chunk_no: int = 0
    offset: int = 0

    def encode(self) -> str:
        """The position as an opaque cursor."""
        return base64.urlsafe_b64encode(f"{self.chunk_no}.{self.offset}".encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> ReadPosition:
        """Read a cursor given back by a client."""
        try:
            chunk, _, offset = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().partition(".")
            position = cls(int(chunk), int(offset))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise BadCursor.at("cursor", "not a cursor this API gave out") from None
        if position.chunk_no < 0 or position.offset < 0:
            raise BadCursor.at("cursor", "not a cursor this API gave out")
        return position


@dataclass(frozen=True)
class TelemetryQuery:
    """A parsed read request."""

    channels: tuple[str, ...] | None = None
    t_from: float | None = None
    t_to: float | None = None
    lap: int | None = None
    points: int | None = None
    format: Format = "json"
    start: ReadPosition = ReadPosition()
    limit: int = DEFAULT_LIMIT
    filters: tuple[ChannelFilter, ...] = ()

    def needed_channels(self) -> set[str]:
        """Channels the filters look at."""
        return {condition.channel for condition in self.filters}


def parse_telemetry_query(raw_query: str) -> TelemetryQuery:
    """Parse a raw query string; any term that is not a known parameter is a filter on a channel."""
    values: dict[str, str] = {}
    filters: list[ChannelFilter] = []
    for term in raw_query.split("&"):
        if not term:
            continue
        match = _TERM.match(unquote_plus(term))
        if match is None:
            raise InvalidTelemetry.at(
                unquote_plus(term)[:100], "expected name=value or a channel comparison such as speed>=250"
            )
        name, op, value = match.group("name").strip(), match.group("op"), match.group("value").strip()
        if name in _RESERVED and op == "=" and name != "lap":
            values[name] = value
        elif name == "lap" and op == "=" and "lap" not in values:
            values["lap"] = value
        else:
            filters.append(ChannelFilter(name, op, _number(name, value)))
    channels = None
    if values.get("channels"):
        channels = tuple(
            dict.fromkeys(name.strip() for name in values["channels"].split(",") if name.strip())
        )
    output_format = next((name for name in FORMATS if name == values.get("format", "json")), None)
    if output_format is None:
        raise InvalidTelemetry.at("format", "must be json, csv or parquet")
    points = _integer(values, "points", 2, MAX_POINTS)
    if output_format == "parquet" and points is not None:
        raise InvalidTelemetry.at(
            "points", "downsampled traces are JSON only: leave out format=parquet or points"
        )
    limit = _integer(values, "limit", 1, MAX_LIMIT)
    t_from = _number("from", values["from"]) if "from" in values else None
    t_to = _number("to", values["to"]) if "to" in values else None
    if t_from is not None and t_to is not None and t_to < t_from:
        raise InvalidTelemetry.at("to", "must not be before from")
    return TelemetryQuery(
        channels=channels,
        t_from=t_from,
        t_to=t_to,
        lap=_integer(values, "lap", 0, 2**31 - 1),
        points=points,
        format=output_format,
        start=ReadPosition.decode(values["cursor"]) if values.get("cursor") else ReadPosition(),
        limit=limit if limit is not None else DEFAULT_LIMIT,
        filters=tuple(filters),
    )


def _number(field: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidTelemetry.at(field, f"{text[:50]!r} is not a number") from None
    if not np.isfinite(value):
        raise InvalidTelemetry.at(field, "must be a finite number")
    return value


def _integer(values: dict[str, str], field: str, low: int, high: int) -> int | None:
    if field not in values:
        return None
    try:
        value = int(values[field])
    except ValueError:
        raise InvalidTelemetry.at(field, f"{values[field][:50]!r} is not an integer") from None
    if not low <= value <= high:
        raise InvalidTelemetry.at(field, f"must be between {low} and {high}")
    return value


def output_channels(query: TelemetryQuery, session_channels: Sequence[str]) -> list[str]:
    """The columns of the answer: `t` first, then the channels asked for (all the session's by default)."""
    if query.channels is None:
        return ["t", *(name for name in session_channels if name != "t")]
    unknown = [name for name in query.channels if name not in session_channels and name != "t"]
    if unknown:
        raise UnknownChannels(
            f"channels: unknown channel {unknown[0]!r}",
            details=[{"field": "channels", "message": f"not in this session: {', '.join(unknown)}"}],
        )
    return ["t", *(name for name in query.channels if name != "t")]


def display_column(name: str, values: FloatArray) -> npt.NDArray[Any]:
    """A column in its most compact faithful form: int64 for whole numbers, float32 when that loses nothing."""
    if values.size == 0:
        return values
    missing = np.isnan(values)
    if not missing.any() and np.all(values == np.rint(values)) and np.all(np.abs(values) < 2.0**53):
        return values.astype(np.int64)
    if name in DEFAULT_EXACT_CHANNELS:
        return values
    narrow = values.astype(np.float32)
    if np.array_equal(narrow.astype(np.float64), values, equal_nan=True):
        return narrow
    return values


#: A spreadsheet reads a text cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_text_cell(text: str) -> str:
    """A text cell no spreadsheet evaluates: a leading formula character is escaped with `'` (the cell reads as
    text), and the cell is quoted when it holds a comma, a quote or a line break."""
    if text.startswith(FORMULA_START):
        text = "'" + text
    if any(c in text for c in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def csv_header(names: Sequence[str]) -> bytes:
    """The CSV header row: the channel names, the only text cells of an export (the rows are numbers)."""
    return (",".join(map(csv_text_cell, names)) + "\n").encode()


def csv_rows(names: Sequence[str], columns: Sequence[FloatArray]) -> bytes:
    """CSV rows of equal-length columns; an empty field where a value is missing."""
    if not columns or columns[0].size == 0:
        return b""
    # orjson formats a numpy column in one call (shortest round-trip digits); the rest is splitting and joining.
    cells = [
        orjson.dumps(display_column(name, values), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
        .replace(b"null", b"")
        .split(b",")
        for name, values in zip(names, columns, strict=True)
    ]
    return b"\n".join(map(b",".join, zip(*cells, strict=True))) + b"\n"
