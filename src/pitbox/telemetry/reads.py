"""Telemetry reads of a session: pages of columns (with a cursor), CSV and Parquet streams, and traces
downsampled by LTTB."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.errors import NotFound
from pitbox.lifecycle import Lifecycle
from pitbox.sessions import store as session_store
from pitbox.telemetry import store
from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.codec_threads import CodecThreads
from pitbox.telemetry.downsample import downsample_columns
from pitbox.telemetry.errors import InvalidTelemetry, UnknownChannels
from pitbox.telemetry.models import FloatArray
from pitbox.telemetry.parquet import ParquetStream
from pitbox.telemetry.query import (
    MAX_DOWNSAMPLE_INPUT,
    ReadPosition,
    TelemetryQuery,
    csv_header,
    csv_rows,
    display_column,
    output_channels,
)
from pitbox.telemetry.reader import Block, ReadOverLimit, Selection, concatenate, read_blocks, read_columns

#: Samples formatted per CSV write (about 1 MB of text at 40 channels).
CSV_ROWS_PER_WRITE = 5_000


class TelemetryReads(Lifecycle):
    """Reads of stored telemetry, access checked first; decodes large reads on threads of its own."""

    def __init__(self, pool: asyncpg.Pool, access: Access, codec: ChunkCodec) -> None:
        self._pool = pool
        self._access = access
        self._codec = codec
        # Reads decode on threads, each with its own codec: zstd and numpy release the GIL.
        self._decoders = CodecThreads(lambda: self._codec.copy())

    async def close(self) -> None:
        """Stop the decoding threads (once requests have stopped)."""
        self._decoders.close()

    def _blocks(self, session_id: uuid.UUID, names: list[str], selection: Selection) -> AsyncIterator[Block]:
        """The selected samples of a session, a page of chunks at a time.

        Decoded inline rather than on the decoding threads: JSON pages and CSV spend their time formatting
        (holding the GIL), and the threads measured no faster for them (docs/benchmarks.md, Telemetry reads).
        """
        return read_blocks(self._pool, self._codec, session_id, names, selection)

    async def read(
        self, principal: Principal, session_id: uuid.UUID, query: TelemetryQuery
    ) -> dict[str, Any]:
        """A page of columns (with `nextCursor`), or with `points` each channel downsampled by LTTB."""
        names, selection = await self._prepare(principal, session_id, query)
        if query.points is not None:
            return await self._downsampled(session_id, names, selection, query.points)
        blocks: list[list[FloatArray]] = []
        count = 0
        next_position: ReadPosition | None = None
        async for block in self._blocks(session_id, names, selection):
            room = query.limit - count
            if room <= 0:
                next_position = block.position(0)
                break
            if block.size > room:
                blocks.append([values[:room] for values in block.columns])
                count += room
                next_position = block.position(room)
                break
            blocks.append(block.columns)
            count += block.size
        columns = concatenate(names, blocks)
        return {
            "sessionId": str(session_id),
            "channels": names,
            "count": count,
            "columns": {
                name: display_column(name, values) for name, values in zip(names, columns, strict=True)
            },
            "nextCursor": next_position.encode() if next_position else None,
        }

    async def csv_stream(
        self, principal: Principal, session_id: uuid.UUID, query: TelemetryQuery
    ) -> AsyncIterator[bytes]:
        """Check access now; then the CSV of every selected sample, streamed a chunk at a time."""
        names, selection = await self._prepare(principal, session_id, query)

        async def rows() -> AsyncIterator[bytes]:
            yield csv_header(names)
            pending: list[list[FloatArray]] = []
            pending_rows = 0
            async for block in self._blocks(session_id, names, selection):
                # Fewer, larger writes (formatting cost is per call), but never more than CSV_ROWS_PER_WRITE
                # rows at once: a page of chunks formatted whole would hold its text many times over.
                for start in range(0, block.size, CSV_ROWS_PER_WRITE):
                    part = [values[start : start + CSV_ROWS_PER_WRITE] for values in block.columns]
                    pending.append(part)
                    pending_rows += part[0].size
                    if pending_rows >= CSV_ROWS_PER_WRITE:
                        yield csv_rows(names, concatenate(names, pending))
                        pending, pending_rows = [], 0
            if pending:
                yield csv_rows(names, concatenate(names, pending))

        return rows()

    async def parquet_stream(
        self, principal: Principal, session_id: uuid.UUID, query: TelemetryQuery
    ) -> AsyncIterator[bytes]:
        """Check access (and that pyarrow is installed) now; then a Parquet file of every selected sample,
        streamed a row group at a time as each page of chunks is read."""
        names, selection = await self._prepare(principal, session_id, query)
        writer = ParquetStream(names)

        async def parts() -> AsyncIterator[bytes]:
            async for block in self._blocks(session_id, names, selection):
                # Encoding a row group takes tens of ms; pyarrow releases the GIL, so off the event loop.
                written = await asyncio.to_thread(writer.write, block.columns)
                if written:
                    yield written
            yield await asyncio.to_thread(writer.close)

        return parts()

    async def _prepare(
        self, principal: Principal, session_id: uuid.UUID, query: TelemetryQuery
    ) -> tuple[list[str], Selection]:
        await self._access.require_session(principal, session_id, scope="telemetry:read")
        session = await session_store.session_by_id(self._pool, session_id)
        if session is None:
            raise NotFound("session not found")
        session_channels: list[str] = list(session["channels"])
        names = output_channels(query, session_channels)
        for condition in query.filters:
            if condition.channel not in session_channels:
                raise UnknownChannels.at(condition.channel, "is not a channel of this session")
        t_from, t_to, lap_counter, exclusive = query.t_from, query.t_to, None, False
        if query.lap is not None:
            lap = await store.lap_of_session(self._pool, session_id, query.lap)
            if lap is not None:
                t_from = lap["t_start"] if t_from is None else max(t_from, lap["t_start"])
                exclusive = t_to is None or t_to >= lap["t_end"]
                t_to = lap["t_end"] if t_to is None else min(t_to, lap["t_end"])
            else:  # not completed (yet): the samples the lap counter puts in it
                lap_counter = query.lap
        return names, Selection(t_from, t_to, exclusive, lap_counter, query.filters, query.start)

    async def _downsampled(
        self, session_id: uuid.UUID, names: list[str], selection: Selection, points: int
    ) -> dict[str, Any]:
        try:
            selected = await read_columns(
                self._pool,
                self._codec,
                session_id,
                names,
                selection,
                max_samples=MAX_DOWNSAMPLE_INPUT,
                decode=self._decoders.decode_columns,
                parts=self._decoders.workers,
            )
        except ReadOverLimit:
            raise InvalidTelemetry.at(
                "points", f"more than {MAX_DOWNSAMPLE_INPUT} samples to downsample; narrow from/to"
            ) from None
        columns = dict(zip(names, selected, strict=True))
        count = int(columns["t"].size)
        traces = downsample_columns(columns, points, channels=names[1:]) if count else {}
        return {
            "sessionId": str(session_id),
            "channels": names,
            "count": count,
            "points": points,
            "series": {
                name: {"t": display_column("t", x), "v": display_column(name, y)}
                for name, (x, y) in traces.items()
            },
        }
