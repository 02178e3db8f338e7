"""Telemetry as a streamed Parquet file (`format=parquet`), through the optional `parquet` extra (pyarrow).

Each block of selected samples becomes one or more row groups, encoded and handed out as soon as it is
written, so a whole session never sits in memory; the footer comes last. Every column is a nullable float64:
the values exactly as stored (float32-rounded channels are exact in float64 too, and `t`, `lat`, `lon`,
constants and whole numbers may need all 64 bits), with null where a sample lacks a channel. The schema has to
be fixed before the first chunk is read, so no column is narrowed the way JSON answers are.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Final

import numpy as np

from pitbox.telemetry.errors import ParquetUnavailable
from pitbox.telemetry.models import FloatArray

MEDIA_TYPE: Final = "application/vnd.apache.parquet"
#: Largest row group (64 Ki samples: ~20 MB of float64 at 40 channels before compression).
ROWS_PER_GROUP: Final = 65_536


def _pyarrow() -> tuple[ModuleType, ModuleType]:
    """pyarrow and pyarrow.parquet, or the 422 that says which extra to install."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        message = "Parquet answers need the parquet extra on the server (pip install 'pitbox[parquet]')"
        raise ParquetUnavailable(
            f"format: {message}",
            details=[{"field": "format", "message": message}],
        ) from None
    return pyarrow, pyarrow.parquet


class _Sink(io.RawIOBase):
    """Where the Parquet writer writes: bytes kept until taken, with the file position the writer records."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        part = bytes(data)
        self._parts.append(part)
        self._position += len(part)
        return len(part)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        """The bytes written since the last call."""
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class ParquetStream:
    """A Parquet file of the columns `names`, written a row group at a time (zstd-compressed).

    Raises Invalid (422, naming `format`) when pyarrow is not installed. Not thread-safe: one writer, one caller
    at a time (the calls may come from different threads).
    """

    def __init__(self, names: Sequence[str]) -> None:
        pa, pq = _pyarrow()
        self._pa = pa
        self._schema = pa.schema([pa.field(name, pa.float64()) for name in names])
        self._sink = _Sink()
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression="zstd")

    def write(self, columns: Sequence[FloatArray]) -> bytes:
        """Write equal-length columns (in the order of `names`; NaN for missing) as row groups; returns the
        file's bytes produced since the last call."""
        arrays = []
        for values in columns:
            missing = np.isnan(values)
            arrays.append(self._pa.array(values, mask=missing if missing.any() else None))
        table = self._pa.Table.from_arrays(arrays, schema=self._schema)
        self._writer.write_table(table, row_group_size=ROWS_PER_GROUP)
        return self._sink.take()

    def close(self) -> bytes:
        """Finish the file; returns its last bytes (the footer)."""
        self._writer.close()
        return self._sink.take()
