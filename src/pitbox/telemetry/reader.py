"""Reading a session's chunks back in order, decoded, cut to a time window and filtered, a block per chunk.

A connection is borrowed for each page of chunks and given back before the blocks are handed out, so a slow
reader (a CSV download) never holds a database connection while it waits on the network.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import numpy as np
import numpy.typing as npt

from pitbox.telemetry import store
from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.models import FloatArray
from pitbox.telemetry.query import ChannelFilter, ReadPosition

CHUNKS_PER_PAGE = 64
#: Pages being decoded while the caller works through the oldest (two keep two worker threads busy).
PAGES_IN_FLIGHT = 2

PageDecoder = Callable[[Sequence[tuple[bytes, int]]], Awaitable[list[FloatArray]]]


@dataclass(frozen=True)
class Selection:
    """Which samples to read: a time window, a lap by its counter, channel filters, from a position on."""

    t_from: float | None = None
    t_to: float | None = None
    t_to_exclusive: bool = False  # a lap ends where the next begins: its window is [t_start, t_end)
    lap_counter: int | None = None
    filters: tuple[ChannelFilter, ...] = ()
    start: ReadPosition = ReadPosition()


@dataclass(frozen=True)
class Block:
    """The selected samples of one chunk: `columns` in the order asked for (NaN where the chunk lacks one)."""

    chunk_no: int
    offsets: npt.NDArray[np.intp]  # index of each selected sample within its chunk
    columns: list[FloatArray]

    @property
    def size(self) -> int:
        """Selected samples in the block."""
        return int(self.offsets.size)


async def read_blocks(
    pool: asyncpg.Pool,
    codec: ChunkCodec,
    session_id: uuid.UUID,
    names: Sequence[str],
    selection: Selection,
    *,
    decode: PageDecoder | None = None,
) -> AsyncIterator[Block]:
    """Blocks of selected samples of `names`, in session order, skipping chunks with nothing selected.

    A page of chunks is decoded at once (by `decode`, e.g. on worker threads, else by `codec` inline); while a
    page decodes, the next one is fetched and started, so database, decoding and the caller overlap.
    """
    in_flight: collections.deque[tuple[list[asyncpg.Record], asyncio.Future[list[FloatArray]]]]
    in_flight = collections.deque()
    next_chunk: int | None = selection.start.chunk_no
    try:
        while True:
            while next_chunk is not None and len(in_flight) < PAGES_IN_FLIGHT:
                async with pool.acquire() as conn:
                    rows = await store.chunks_in_order(
                        conn,
                        session_id,
                        from_chunk=next_chunk,
                        t_from=selection.t_from,
                        t_to=selection.t_to,
                        lap=selection.lap_counter,
                        limit=CHUNKS_PER_PAGE,
                    )
                next_chunk = int(rows[-1]["chunk_no"]) + 1 if len(rows) == CHUNKS_PER_PAGE else None
                if rows:
                    chunks = [(row["payload"], len(row["channels"])) for row in rows]
                    if decode is None:
                        done: asyncio.Future[list[FloatArray]] = asyncio.get_running_loop().create_future()
                        done.set_result(codec.decode_matrices(chunks))
                        in_flight.append((rows, done))
                    else:
                        in_flight.append((rows, asyncio.ensure_future(decode(chunks))))
            if not in_flight:
                return
            rows, decoding = in_flight[0]
            matrices = await decoding
            in_flight.popleft()
            for row, matrix in zip(rows, matrices, strict=True):
                block = _select(row, matrix, names, selection)
                if block.size:
                    yield block
    finally:
        for _, decoding in in_flight:
            decoding.cancel()


def _select(row: asyncpg.Record, matrix: FloatArray, names: Sequence[str], selection: Selection) -> Block:
    chunk_channels: list[str] = row["channels"]
    index = {name: position for position, name in enumerate(chunk_channels)}
    samples = matrix.shape[1]
    missing = np.full(samples, np.nan)

    def column(name: str) -> FloatArray:
        position = index.get(name)
        return missing if position is None else matrix[position]

    keep = np.ones(samples, dtype=bool)
    t = column("t")
    if selection.t_from is not None:
        keep &= t >= selection.t_from
    if selection.t_to is not None:
        keep &= (t < selection.t_to) if selection.t_to_exclusive else (t <= selection.t_to)
    if selection.lap_counter is not None:
        keep &= column("lap") == selection.lap_counter
    for condition in selection.filters:
        keep &= condition.matches(column(condition.channel))
    chunk_no = int(row["chunk_no"])
    if chunk_no == selection.start.chunk_no and selection.start.offset:
        keep[: selection.start.offset] = False
    offsets = np.flatnonzero(keep)
    if offsets.size == samples:
        return Block(chunk_no, offsets, [column(name) for name in names])
    return Block(chunk_no, offsets, [column(name)[offsets] for name in names])
