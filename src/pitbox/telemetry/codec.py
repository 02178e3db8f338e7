"""Compact encoding of one telemetry chunk (a batch of samples × channels) into a `bytes` payload.

What is kept, per channel and per chunk (chosen automatically, recorded in a 2-byte descriptor):

* every present value equal        -> ``CONSTANT``: one exact float64;
* every present value an integer   -> ``INTEGER``: exact (|v| < 2**53), as zig-zag deltas;
* a channel named in ``exact_channels`` (default ``t``, ``lat``, ``lon``) -> ``FLOAT64``: the exact
  float64 bit pattern, delta-coded as an integer (bit-exact, NaN payloads aside);
* any other channel                 -> ``FLOAT32``: the value rounded to float32 (relative error <= 2**-24,
  so exact for data that was float32 at the source, as iRacing's is), optionally rounded further to
  ``mantissa_bits`` significant bits (relative error <= 2**-(mantissa_bits + 1)).

Float bit patterns are delta-coded as integers (first or second order, whichever is smaller for that
channel), zig-zagged, narrowed to 1/2/4/8 bytes, byte-shuffled (all first bytes of a channel, then all
second bytes, ... as Blosc does) and the whole chunk is compressed with zstd. A missing value (``None``, a
missing key or NaN) is recorded in a per-channel bitmap that is only present for channels that miss values;
decoding gives NaN there. Every decoded channel is a float64 array.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import zstandard

from pitbox.telemetry.errors import (
    CorruptChunk,
    RaggedChunk,
    TelemetryValueNotNumeric,
    TooManyChannels,
    TooManySamples,
)

FloatArray = npt.NDArray[np.float64]
Sample = Mapping[str, float | int | None]

FORMAT_VERSION: Final = 1
DEFAULT_EXACT_CHANNELS: Final = frozenset({"t", "lat", "lon"})

KIND_ALL_MISSING: Final = 0
KIND_CONSTANT: Final = 1
KIND_INTEGER: Final = 2
KIND_FLOAT32: Final = 3
KIND_FLOAT64: Final = 4

_HEADER = struct.Struct("<BIH")  # version, samples, channels
#: Decoding layouts a codec remembers (each a few hundred bytes; all are dropped when full).
PLANS_KEPT: Final = 1024
#: Coded bytes decoded in one numpy pass (see `_batches`).
BATCH_BYTES: Final = 128 * 1024
_MAX_EXACT_INT = 2.0**53
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_WIDTH_DTYPES: Final[dict[int, type[np.unsignedinteger[Any]]]] = {
    0: np.uint8,
    1: np.uint16,
    2: np.uint32,
    3: np.uint64,
}
_SIGNED: Final[dict[int, type[np.signedinteger[Any]]]] = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}


def rows_to_columns(rows: Sequence[Sample]) -> dict[str, FloatArray]:
    """Turn row-wise samples (the decoded JSON of an ingest batch) into float64 columns, NaN for missing.

    Channels are ordered by first appearance; a sample without a channel gets NaN for it.
    """
    if not rows:
        return {}
    first = rows[0]
    first_keys = first.keys()
    try:
        if all(row.keys() == first_keys for row in rows):
            names = list(first_keys)
            if len(names) == 1:
                only = names[0]
                return {only: np.array([row[only] for row in rows], dtype=np.float64)}
            getter = itemgetter(*names)
            matrix = np.array([getter(row) for row in rows], dtype=np.float64)
        else:
            names = list(dict.fromkeys(chain.from_iterable(rows)))
            matrix = np.array([[row.get(name) for name in names] for row in rows], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TelemetryValueNotNumeric("a telemetry value is not a number") from error
    if matrix.ndim != 2:  # pragma: no cover - only when a value is itself a sequence
        raise TelemetryValueNotNumeric("a telemetry value is not a number")
    columns = np.ascontiguousarray(matrix.T)
    return {name: columns[index] for index, name in enumerate(names)}


def _as_matrix(columns: Mapping[str, Iterable[float | int | None]]) -> tuple[list[str], FloatArray]:
    names = list(columns)
    try:
        arrays = [np.asarray(columns[name], dtype=np.float64) for name in names]
    except (TypeError, ValueError) as error:
        raise TelemetryValueNotNumeric("a telemetry value is not a number") from error
    if not arrays:
        return names, np.empty((0, 0), dtype=np.float64)
    lengths = {array.shape for array in arrays}
    if len(lengths) != 1 or arrays[0].ndim != 1:
        raise RaggedChunk("every channel of a chunk needs the same number of samples")
    return names, np.stack(arrays)


def _zigzag(deltas: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    return ((deltas << 1) ^ (deltas >> 63)).view(np.uint64)


class ChunkCodec:
    """Encodes chunks of samples to compact bytes and back; holds its zstd (de)compressor.

    A codec is cheap to build and not thread-safe: build one per worker or per task.
    """

    def __init__(
        self,
        *,
        level: int = 3,
        mantissa_bits: int = 23,
        exact_channels: Iterable[str] = DEFAULT_EXACT_CHANNELS,
        full_precision_channels: Iterable[str] = ("lapDistPct", "lapDist", "x", "y", "z"),
    ) -> None:
        """Build a codec; `mantissa_bits` < 23 rounds float32 channels further (not the full-precision ones)."""
        if not 1 <= mantissa_bits <= 23:
            raise ValueError("mantissa_bits must be between 1 and 23")
        self._settings: dict[str, Any] = {
            "level": level,
            "mantissa_bits": mantissa_bits,
            "exact_channels": frozenset(exact_channels),
            "full_precision_channels": frozenset(full_precision_channels),
        }
        self._compressor = zstandard.ZstdCompressor(level=level)
        self._decompressor = zstandard.ZstdDecompressor()
        # Decoding layouts seen lately (chunks of one session mostly share a few): see `_queue`.
        self._plans: dict[tuple[bytes, int, bytes, int], _ChunkPlan] = {}
        self._drop_bits = 23 - mantissa_bits
        self._exact = self._settings["exact_channels"]
        self._full_precision = self._settings["full_precision_channels"]

    @property
    def settings(self) -> dict[str, Any]:
        """The keyword arguments that build an equal codec (in another thread or process)."""
        return dict(self._settings)

    def copy(self) -> ChunkCodec:
        """A codec with the same settings and its own zstd contexts (for another thread)."""
        return ChunkCodec(**self._settings)

    def encode_rows(self, rows: Sequence[Sample]) -> tuple[bytes, list[str]]:
        """Encode row-wise samples; returns the payload and the channel names in payload order."""
        return self.encode(rows_to_columns(rows))

    def encode(self, columns: Mapping[str, Iterable[float | int | None]]) -> tuple[bytes, list[str]]:
        """Encode column-wise samples (equal lengths; None or NaN for missing).

        Returns the payload and the channel names in payload order (channels are regrouped by encoding, so
        the order may differ from the input's); pass both to `decode`.
        """
        names, matrix = _as_matrix(columns)
        channels, samples = (matrix.shape[0], matrix.shape[1]) if names else (0, 0)
        if channels > 0xFFFF:
            raise TooManyChannels("too many channels in one chunk")
        if samples > 0xFFFFFFFF:
            raise TooManySamples("too many samples in one chunk")
        header = _HEADER.pack(FORMAT_VERSION, samples, channels)
        if channels == 0 or samples == 0:
            return header, names

        missing = np.isnan(matrix)
        has_missing: npt.NDArray[np.bool_] = np.any(missing, axis=1)
        all_missing = np.zeros(channels, dtype=bool)
        if has_missing.any():
            matrix, all_missing = _fill_missing(matrix, missing, has_missing)

        kinds = np.full(channels, KIND_FLOAT32, dtype=np.uint8)
        finite = np.isfinite(matrix)
        integral = np.all(finite & (matrix == np.rint(matrix)) & (np.abs(matrix) < _MAX_EXACT_INT), axis=1)
        constant = np.all(matrix == matrix[:, :1], axis=1)
        exact = np.fromiter((name in self._exact for name in names), dtype=bool, count=channels)
        beyond_float32 = np.any(finite & (np.abs(matrix) > _FLOAT32_MAX), axis=1)
        kinds[exact | beyond_float32] = KIND_FLOAT64
        kinds[integral] = KIND_INTEGER
        kinds[constant] = KIND_CONSTANT
        kinds[all_missing] = KIND_ALL_MISSING

        shifts = np.zeros(channels, dtype=np.uint8)
        orders = np.zeros(channels, dtype=np.uint8)
        widths = np.zeros(channels, dtype=np.uint8)
        coded = np.flatnonzero(kinds >= KIND_INTEGER)
        zigzag = np.empty((0, samples), dtype=np.uint64)
        bases = np.empty(0, dtype=np.int64)
        if coded.size:
            codes = self._integer_codes(names, matrix, kinds, coded, shifts)
            bases = codes[:, 0].copy()  # stored apart, so the deltas start at 0 and stay narrow
            first = np.zeros_like(codes)
            np.subtract(codes[:, 1:], codes[:, :-1], out=first[:, 1:])
            second = np.zeros_like(first)
            np.subtract(first[:, 1:], first[:, :-1], out=second[:, 1:])
            float32_rows = kinds[coded] == KIND_FLOAT32
            if float32_rows.any():  # their bit patterns are decoded modulo 2**32: wrap the deltas to 32 bits
                first[float32_rows] = first[float32_rows].astype(np.int32)
                second[float32_rows] = second[float32_rows].astype(np.int32)
            use_second = np.abs(second).sum(axis=1, dtype=np.float64) < np.abs(first).sum(
                axis=1, dtype=np.float64
            )
            zigzag = _zigzag(np.where(use_second[:, None], second, first))
            peak = zigzag.max(axis=1)
            orders[coded] = np.where(use_second, 2, 1)
            widths[coded] = np.select([peak < 1 << 8, peak < 1 << 16, peak < 1 << 32], [0, 1, 2], default=3)

        # Group channels with the same encoding next to each other so decoding works on contiguous runs.
        order = np.lexsort((widths, orders, shifts, kinds))
        coded_position = np.full(channels, -1, dtype=np.int64)
        coded_position[coded] = np.arange(coded.size)
        descriptors = np.empty((channels, 2), dtype=np.uint8)
        descriptors[:, 0] = kinds | (has_missing.astype(np.uint8) << 3) | (orders << 4) | (widths << 6)
        descriptors[:, 1] = shifts
        descriptors = descriptors[order]
        sorted_kinds = kinds[order]
        constants = matrix[order[sorted_kinds == KIND_CONSTANT], 0].astype("<f8").tobytes()
        partial = order[has_missing[order] & ~all_missing[order]]
        bitmap = np.packbits(missing[partial], axis=1).tobytes() if partial.size else b""
        blocks = [
            _byte_planes(zigzag[coded_position[order[start:stop]]], int(widths[order[start]]))
            for start, stop in _runs(descriptors)
            if sorted_kinds[start] >= KIND_INTEGER
        ]
        coded_in_order = coded_position[order[sorted_kinds >= KIND_INTEGER]]
        body = b"".join(
            [descriptors.tobytes(), constants, bitmap, bases[coded_in_order].astype("<i8").tobytes(), *blocks]
        )
        return header + self._compressor.compress(body), [names[index] for index in order]

    def _integer_codes(
        self,
        names: Sequence[str],
        matrix: FloatArray,
        kinds: npt.NDArray[np.uint8],
        coded: npt.NDArray[np.intp],
        shifts: npt.NDArray[np.uint8],
    ) -> npt.NDArray[np.int64]:
        """Each coded channel as int64: the integer itself, or the bit pattern of its float32/float64 value."""
        codes = np.empty((coded.size, matrix.shape[1]), dtype=np.int64)
        coded_kinds = kinds[coded]
        for kind in (KIND_INTEGER, KIND_FLOAT32, KIND_FLOAT64):
            members = np.flatnonzero(coded_kinds == kind)
            if not members.size:
                continue
            values = matrix[coded[members]]
            if kind == KIND_INTEGER:
                codes[members] = values.astype(np.int64)
            elif kind == KIND_FLOAT64:
                codes[members] = values.view(np.int64)
            else:
                bits = values.astype(np.float32).view(np.uint32).astype(np.int64)
                if self._drop_bits:
                    rows = coded[members]
                    rounded = np.fromiter(
                        (names[row] not in self._full_precision for row in rows), dtype=bool, count=rows.size
                    )
                    drop = self._drop_bits
                    bits[rounded] = (bits[rounded] + (1 << (drop - 1))) >> drop
                    shifts[rows[rounded]] = drop
                codes[members] = bits
        return codes

    def decode(self, payload: bytes, names: Sequence[str]) -> dict[str, FloatArray]:
        """Decode a payload back to float64 columns keyed by `names` (NaN where a value was missing)."""
        matrix = self.decode_matrix(payload, len(names))
        return {name: matrix[index] for index, name in enumerate(names)}

    def decode_matrix(self, payload: bytes, channels: int) -> FloatArray:
        """Decode a payload to a (channels × samples) float64 matrix, one row per channel in payload order."""
        return self.decode_matrices([(payload, channels)])[0]

    def decode_matrices(self, chunks: Sequence[tuple[bytes, int]]) -> list[FloatArray]:
        """Decode many (payload, channel count) chunks at once; the same matrices as `decode_matrix` each.

        Runs of channels coded the same way are gathered across all chunks and undone in one numpy pass per
        kind of run, so the cost per chunk is a few slices rather than a dozen small array operations per run.
        """
        pending = _PendingRuns()
        matrices = []
        identity: dict[int, npt.NDArray[np.intp]] = {}
        for payload, channels in chunks:
            samples = _samples_of(payload, channels)
            out = np.empty((channels, samples), dtype=np.float64)
            matrices.append(out)
            if channels and samples:
                rows = identity.get(channels)
                if rows is None:
                    rows = identity[channels] = np.arange(channels)
                self._queue(payload, out, 0, rows, b"", pending)
        pending.finish()
        return matrices

    def decode_columns(
        self,
        chunks: Sequence[tuple[bytes, Sequence[str]]],
        names: Sequence[str],
        out: FloatArray | None = None,
    ) -> FloatArray:
        """Decode (payload, channel names) chunks end to end into one (len(names) x samples) float64 matrix.

        Row i is channel `names[i]` across every chunk, NaN where a chunk lacks it. Channels not in `names`
        are skipped rather than decoded, and each value is written once, straight to its place in the matrix:
        `out` when given (e.g. some columns of a larger matrix, so threads can fill parts of one answer).
        """
        sizes = [_samples_of(payload, len(channels)) for payload, channels in chunks]
        if out is None:
            out = np.empty((len(names), sum(sizes)), dtype=np.float64)
        elif out.shape != (len(names), sum(sizes)) or out.dtype != np.float64 or out.strides[1] != 8:
            raise ValueError("out must be a float64 (names x samples) matrix with contiguous rows")
        index = {name: row for row, name in enumerate(names)}
        rows_of: dict[tuple[str, ...], tuple[npt.NDArray[np.intp], bytes]] = {}
        pending = _PendingRuns()
        start = 0
        for (payload, channels), samples in zip(chunks, sizes, strict=True):
            if samples and not channels:
                out[:, start : start + samples] = np.nan
            elif samples:
                key = tuple(channels)
                mapping = rows_of.get(key)
                if mapping is None:
                    rows = np.fromiter((index.get(name, -1) for name in key), dtype=np.intp, count=len(key))
                    mapping = rows_of[key] = (rows, rows.tobytes())
                self._queue(payload, out, start, *mapping, pending)
            start += samples
        pending.finish()
        return out

    def _queue(
        self,
        payload: bytes,
        out: FloatArray,
        start: int,
        rows: npt.NDArray[np.intp],
        rows_key: bytes,
        pending: _PendingRuns,
    ) -> None:
        """Decompress one chunk into `out` from column `start` on: fill constant and missing rows now, queue
        its coded runs. `rows[i]` is the row of `out` that payload channel i goes to (-1: skip it);
        `rows_key` names that mapping (b"" for one row per channel in payload order).
        """
        channels, samples = rows.size, _HEADER.unpack_from(payload)[1]
        try:
            body = self._decompressor.decompress(memoryview(payload)[_HEADER.size :])
        except zstandard.ZstdError as error:
            raise CorruptChunk("telemetry chunk is corrupt") from error
        if len(body) < 2 * channels:
            raise CorruptChunk("telemetry chunk is truncated")
        # Chunks of a session mostly share a few layouts (an hour of 360 chunks: 64), and working one out costs
        # more than using it: keep the recent ones.
        key = (body[: 2 * channels], samples, rows_key, out.shape[0])
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= PLANS_KEPT:
                self._plans.clear()
            descriptors = np.frombuffer(body, dtype=np.uint8, count=2 * channels).reshape(channels, 2)
            plan = self._plans[key] = _ChunkPlan.of(descriptors, samples, rows, out.shape[0])
        plan.queue(body, out, start, pending)


def _fill_missing(
    matrix: FloatArray, missing: npt.NDArray[np.bool_], has_missing: npt.NDArray[np.bool_]
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Fill gaps with the previous present value (the first present one at the start) so deltas stay small."""
    matrix = matrix.copy()
    rows = np.flatnonzero(has_missing)
    sub = matrix[rows]
    gaps = missing[rows]
    all_missing = np.zeros(matrix.shape[0], dtype=bool)
    all_missing[rows] = gaps.all(axis=1)
    positions = np.where(gaps, 0, np.arange(sub.shape[1]))
    np.maximum.accumulate(positions, axis=1, out=positions)
    filled = np.take_along_axis(sub, positions, axis=1)
    first_present = np.argmax(~gaps, axis=1)
    leading = np.isnan(filled)
    filled = np.where(leading, sub[np.arange(sub.shape[0]), first_present][:, None], filled)
    filled[np.isnan(filled)] = 0.0
    matrix[rows] = filled
    return matrix, all_missing


def _runs(descriptors: npt.NDArray[np.uint8]) -> list[tuple[int, int]]:
    """Start and stop of each run of channels sharing kind, order, width and shift (the missing bit aside)."""
    key = (descriptors[:, 0] & 0xF7).astype(np.uint16) | (descriptors[:, 1].astype(np.uint16) << 8)
    edges = [0, *(np.flatnonzero(key[1:] != key[:-1]) + 1).tolist(), len(key)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _byte_planes(values: npt.NDArray[np.uint64], width_code: int) -> bytes:
    """Byte-shuffle: for each channel, all its lowest bytes, then all its second bytes, and so on."""
    size = 1 << width_code
    planes = np.empty((values.shape[0], size, values.shape[1]), dtype=np.uint8)
    for byte in range(size):
        planes[:, byte] = values >> np.uint64(8 * byte)
    return planes.tobytes()


def _from_byte_planes(planes: npt.NDArray[np.uint8]) -> npt.NDArray[np.signedinteger[Any]]:
    """Undo `_byte_planes` and the zig-zag for a (channels × bytes × samples) block; signed, same width."""
    size = planes.shape[1]
    unsigned = _WIDTH_DTYPES[size.bit_length() - 1]
    # Bytes were stored lowest first: shift the highest in and OR the lower ones after it. Whole-array shifts
    # and ORs run several times faster than interleaving the bytes through strided single-byte copies.
    values = planes[:, size - 1].astype(unsigned)
    for byte in range(size - 2, -1, -1):
        values <<= unsigned(8)
        values |= planes[:, byte]
    sign = (values & unsigned(1)).view(_SIGNED[size])
    values >>= unsigned(1)
    np.negative(sign, out=sign)
    decoded = values.view(_SIGNED[size])
    decoded ^= sign
    return decoded


def _samples_of(payload: bytes, channels: int) -> int:
    """The sample count in a chunk's header, once the header is checked against the expected channels."""
    if len(payload) < _HEADER.size:
        raise CorruptChunk("telemetry chunk is truncated")
    version, samples, stored_channels = _HEADER.unpack_from(payload)
    if version != FORMAT_VERSION:
        raise CorruptChunk(f"unknown telemetry chunk version {version}")
    if stored_channels != channels:
        raise CorruptChunk("channel names do not match the chunk")
    return int(samples)


Rows = slice | npt.NDArray[np.intp]


def _rows_index(rows: npt.NDArray[np.intp]) -> Rows:
    """A slice when the rows are consecutive (a plain copy), else the row numbers (a scatter)."""
    first, last = int(rows[0]), int(rows[-1])
    if last - first == rows.size - 1 and (rows.size < 3 or bool(np.all(rows[1:] > rows[:-1]))):
        return slice(first, last + 1)  # distinct rows, rising, spanning exactly their count: consecutive
    return rows


@dataclass
class _CodedRun:
    """One run of delta-coded channels of one chunk, waiting to be decoded with its like."""

    out: FloatArray  # the output matrix
    start: int  # the chunk's first column in it
    rows: Rows  # the run's rows in it
    row_numbers: npt.NDArray[np.intp]  # the same as numbers
    planes: npt.NDArray[np.uint8]  # (channels x bytes x samples)
    bases: npt.NDArray[np.int64]


@dataclass(frozen=True)
class _RunPlan:
    """Where one coded run lies in a chunk body and which of its channels go to which output rows."""

    key: tuple[int, int, int, int]  # kind, descriptor (missing bit cleared), shift, samples
    offset: int
    channels: int
    size: int  # bytes per value
    bases: slice
    pick: npt.NDArray[np.intp] | None  # the run's channels wanted (None: all of them)
    rows: Rows
    row_numbers: npt.NDArray[np.intp]


@dataclass(frozen=True)
class _ChunkPlan:
    """How chunks with one layout (descriptors, length, channel -> row map) are decoded into a view."""

    size: int  # body bytes the layout needs
    samples: int
    constants: tuple[int, int]  # offset, count
    constant_pick: npt.NDArray[np.intp]
    constant_rows: npt.NDArray[np.intp]
    nan_rows: npt.NDArray[np.intp]  # channels missing everywhere, and rows the chunk has no channel for
    bitmaps: tuple[int, int]  # offset, count
    gap_pick: npt.NDArray[np.intp]
    gap_rows: npt.NDArray[np.intp]
    bases: tuple[int, int]  # offset, count
    runs: tuple[_RunPlan, ...]

    @classmethod
    def of(
        cls, descriptors: npt.NDArray[np.uint8], samples: int, rows: npt.NDArray[np.intp], out_rows: int
    ) -> _ChunkPlan:
        """Lay out a body with these descriptors; `rows[i]` is channel i's output row (-1: not wanted)."""
        channels = descriptors.shape[0]
        kinds = descriptors[:, 0] & 7
        wanted = rows >= 0
        offset = 2 * channels
        constant = np.flatnonzero(kinds == KIND_CONSTANT)
        constants = (offset, constant.size)
        offset += 8 * constant.size
        partial = np.flatnonzero((descriptors[:, 0] & 8).astype(bool) & (kinds != KIND_ALL_MISSING))
        bitmaps = (offset, partial.size)
        offset += partial.size * ((samples + 7) // 8)
        coded_count = int(np.count_nonzero(kinds >= KIND_INTEGER))
        bases = (offset, coded_count)
        offset += 8 * coded_count
        covered = np.zeros(out_rows, dtype=bool)
        covered[rows[wanted]] = True
        all_missing = rows[(kinds == KIND_ALL_MISSING) & wanted]
        runs = []
        coded_index = 0
        for start, stop in _runs(descriptors):
            kind = int(kinds[start])
            if kind < KIND_INTEGER:
                continue
            descriptor = int(descriptors[start, 0]) & 0xF7  # the missing bit does not change the decoding
            size = 1 << (descriptor >> 6)
            run_wanted = wanted[start:stop]
            if run_wanted.any():
                runs.append(
                    _RunPlan(
                        (kind, descriptor, int(descriptors[start, 1]), samples),
                        offset,
                        stop - start,
                        size,
                        slice(coded_index, coded_index + stop - start),
                        None if run_wanted.all() else np.flatnonzero(run_wanted),
                        _rows_index(rows[start:stop][run_wanted]),
                        rows[start:stop][run_wanted],
                    )
                )
            offset += (stop - start) * size * samples
            coded_index += stop - start
        return cls(
            size=offset,
            samples=samples,
            constants=constants,
            constant_pick=np.flatnonzero(wanted[constant]),
            constant_rows=rows[constant[wanted[constant]]],
            nan_rows=np.concatenate([all_missing, np.flatnonzero(~covered)]),
            bitmaps=bitmaps,
            gap_pick=np.flatnonzero(wanted[partial]),
            gap_rows=rows[partial[wanted[partial]]],
            bases=bases,
            runs=tuple(runs),
        )

    def queue(self, body: bytes, out: FloatArray, start: int, pending: _PendingRuns) -> None:
        """Fill the chunk's constant and missing rows (columns `start`... of `out`) from `body` now; queue its
        coded runs (and gaps)."""
        if self.size > len(body):
            raise CorruptChunk("telemetry chunk is truncated")
        samples = self.samples
        view = out[:, start : start + samples]
        if self.constant_rows.size:
            offset, count = self.constants
            constants = np.frombuffer(body, dtype="<f8", count=count, offset=offset)
            view[self.constant_rows] = constants[self.constant_pick, None]
        if self.nan_rows.size:
            view[self.nan_rows] = np.nan
        raw = np.frombuffer(body, dtype=np.uint8)
        if self.gap_rows.size:
            offset, count = self.bitmaps
            width = (samples + 7) // 8
            packed = raw[offset : offset + count * width].reshape(count, width)[self.gap_pick]
            pending.gaps.append((view, self.gap_rows, packed))
        offset, count = self.bases
        bases = np.frombuffer(body, dtype="<i8", count=count, offset=offset)
        for run in self.runs:
            planes = raw[run.offset : run.offset + run.channels * run.size * samples].reshape(
                run.channels, run.size, samples
            )
            run_bases = bases[run.bases]
            if run.pick is not None:
                planes, run_bases = planes[run.pick], run_bases[run.pick]
            pending.runs.setdefault(run.key, []).append(
                _CodedRun(out, start, run.rows, run.row_numbers, planes, run_bases)
            )


@dataclass
class _PendingRuns:
    """Coded runs gathered by (kind, descriptor, shift, samples), and the gaps to punch in afterwards."""

    runs: dict[tuple[int, int, int, int], list[_CodedRun]] = field(default_factory=dict)
    gaps: list[tuple[FloatArray, npt.NDArray[np.intp], npt.NDArray[np.uint8]]] = field(default_factory=list)

    def finish(self) -> None:
        """Decode every gathered run into its rows, then mark the missing values NaN."""
        for (kind, descriptor, shift, _), runs in self.runs.items():
            for members in _batches(runs):
                self._decode(kind, descriptor, shift, members)
        for view, rows, packed in self.gaps:
            gaps = np.unpackbits(packed, axis=1, count=view.shape[1]).astype(bool)
            sub = view[rows]
            sub[gaps] = np.nan
            view[rows] = sub

    @staticmethod
    def _decode(kind: int, descriptor: int, shift: int, members: Sequence[_CodedRun]) -> None:
        """Decode runs coded alike in one numpy pass per step and write each into its rows."""
        if len(members) == 1:
            planes, bases = members[0].planes, members[0].bases
        else:
            planes = np.concatenate([member.planes for member in members])
            bases = np.concatenate([member.bases for member in members])
        values = _decode_codes(planes, bases, kind, descriptor, shift)
        out = members[0].out
        if len(members) > 1 and all(member.out is out for member in members):
            _scatter(out, members, values)
            return
        offset = 0
        for member in members:
            count = member.planes.shape[0]
            samples = values.shape[1]
            member.out[member.rows, member.start : member.start + samples] = values[offset : offset + count]
            offset += count


def _batches(runs: list[_CodedRun]) -> Iterator[list[_CodedRun]]:
    """Consecutive runs in batches of about BATCH_BYTES of coded bytes.

    Decoding a batch makes a few temporary arrays of its size: kept this small they stay in the CPU's cache
    and in memory the allocator reuses, where arrays of many MB would be mapped afresh (page faults) each time.
    """
    batch: list[_CodedRun] = []
    size = 0
    for run in runs:
        if batch and size + run.planes.nbytes > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(run)
        size += run.planes.nbytes
    if batch:
        yield batch


def _scatter(out: FloatArray, members: Sequence[_CodedRun], values: npt.NDArray[Any]) -> None:
    """Write the decoded rows of many chunks' runs into `out` with one numpy call rather than one per run.

    Every run of the group has the same length, so each lands in a window of `out`: a row and a start column.
    A view whose element [row, start] is the window starting there makes all of them one fancy assignment
    (the windows overlap in the view, never in what is written: each chunk has its own columns).
    """
    samples = values.shape[1]
    rows = np.concatenate([member.row_numbers for member in members])
    starts = np.repeat(
        np.fromiter((member.start for member in members), dtype=np.intp, count=len(members)),
        np.fromiter((member.row_numbers.size for member in members), dtype=np.intp, count=len(members)),
    )
    row_stride, column_stride = out.strides
    windows = np.lib.stride_tricks.as_strided(
        out,
        shape=(out.shape[0], out.shape[1] - samples + 1, samples),
        strides=(row_stride, column_stride, column_stride),
    )
    windows[rows, starts] = values


def _decode_codes(
    planes: npt.NDArray[np.uint8], bases: npt.NDArray[np.int64], kind: int, descriptor: int, shift: int
) -> npt.NDArray[Any]:
    """The values of coded channels (any numeric dtype that casts to float64 exactly)."""
    size = planes.shape[1]
    deltas = _from_byte_planes(planes)
    # float32 bit patterns only matter modulo 2**32, so their running sums may wrap in int32.
    wide = kind != KIND_FLOAT32 or size > 4
    dtype = np.int64 if wide else np.int32
    order = (descriptor >> 4) & 3
    # The first delta of each channel is 0 (the first value is its base), so the base can ride in there.
    codes: npt.NDArray[np.signedinteger[Any]] = np.cumsum(deltas, axis=1, dtype=dtype) if order else deltas
    if order == 2:
        codes[:, 0] += bases.astype(dtype)
        np.cumsum(codes, axis=1, out=codes)
    elif order == 1:
        codes += bases[:, None].astype(dtype)
    else:
        codes = codes.astype(dtype) + bases[:, None].astype(dtype)
    if kind == KIND_INTEGER:
        return codes
    if kind == KIND_FLOAT64:
        return codes.view(np.float64)
    if shift:
        codes <<= shift
    return (codes.astype(np.uint32) if wide else codes).view(np.float32)
