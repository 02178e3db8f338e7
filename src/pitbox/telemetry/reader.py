"""Reading a session's chunks back in order, decoded, cut to a time window and filtered.

Chunks are decoded many at once into one matrix holding only the channels the read needs (the ones asked for
and the ones the selection looks at), and the selection is worked out over the whole matrix in a few numpy
passes, so the cost per chunk stays small. Two ways to read:

* `read_blocks` streams a block per page of chunks. A connection is borrowed for each page and given back
  before the block is handed out, so a slow reader (a CSV download) never holds a database connection while
  it waits on the network.
* `read_columns` gives the whole selection as one matrix (for downsampling): fetched first, then decoded
  straight into place, in parts on worker threads, with no copy to join pages.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import asyncpg
import numpy as np
import numpy.typing as npt

from pitbox.telemetry import store
from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.errors import CorruptChunk
from pitbox.telemetry.models import FloatArray
from pitbox.telemetry.query import ChannelFilter, ReadPosition

CHUNKS_PER_PAGE = 64
#: Pages being decoded while the caller works through the oldest (two keep two worker threads busy).
PAGES_IN_FLIGHT = 2

Chunks = Sequence[tuple[bytes, Sequence[str]]]
#: Decodes (payload, channel names) chunks into a (names x samples) matrix (`out` when given), e.g. on a
#: worker thread: `CodecThreads.decode_columns`.
PageDecoder = Callable[[Chunks, Sequence[str], FloatArray | None], Awaitable[FloatArray]]


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which samples to read: a time window, a lap by its counter, channel filters, from a position on."""

    t_from: float | None = None
    t_to: float | None = None
    t_to_exclusive: bool = False  # a lap ends where the next begins: its window is [t_start, t_end)
    lap_counter: int | None = None
    filters: tuple[ChannelFilter, ...] = ()
    start: ReadPosition = ReadPosition()


@dataclasses.dataclass(frozen=True)
class Block:
    """The selected samples of a page of chunks: `columns` in the order asked for (NaN where a chunk lacks one).

    `chunk_nos` and `chunk_starts` say where each chunk of the page begins; `offsets` is the index in the page
    of each selected sample (None when every sample of the page is selected).
    """

    columns: list[FloatArray]
    chunk_nos: npt.NDArray[np.int64]
    chunk_starts: npt.NDArray[np.intp]
    offsets: npt.NDArray[np.intp] | None

    @property
    def size(self) -> int:
        """Selected samples in the block."""
        return int(self.columns[0].size) if self.columns else 0

    def position(self, index: int) -> ReadPosition:
        """Where selected sample `index` is stored: its chunk and its offset within that chunk."""
        in_page = index if self.offsets is None else int(self.offsets[index])
        chunk = int(np.searchsorted(self.chunk_starts, in_page, side="right")) - 1
        return ReadPosition(int(self.chunk_nos[chunk]), in_page - int(self.chunk_starts[chunk]))


class ReadOverLimit(Exception):
    """More samples are stored in the window than the caller allows to be read at once."""


def needed_channels(names: Sequence[str], selection: Selection) -> list[str]:
    """The channels to decode: `names`, then those only the selection looks at (time, lap, filters)."""
    extra = ["t", *(["lap"] if selection.lap_counter is not None else [])]
    extra += [condition.channel for condition in selection.filters]
    return list(dict.fromkeys([*names, *extra]))


async def read_blocks(
    pool: asyncpg.Pool,
    codec: ChunkCodec,
    session_id: uuid.UUID,
    names: Sequence[str],
    selection: Selection,
    *,
    decode: PageDecoder | None = None,
) -> AsyncIterator[Block]:
    """Blocks of selected samples of `names`, in session order, skipping pages with nothing selected.

    A page of chunks is decoded at once (by `decode`, e.g. on worker threads, else by `codec` inline); while a
    page decodes, the next one is fetched and started, so database, decoding and the caller overlap.
    """
    decoded = needed_channels(names, selection)
    in_flight: collections.deque[tuple[list[asyncpg.Record], asyncio.Future[FloatArray]]]
    in_flight = collections.deque()
    next_chunk: int | None = selection.start.chunk_no
    offset = selection.start.offset  # only the first page starts inside a chunk
    try:
        while True:
            while next_chunk is not None and len(in_flight) < PAGES_IN_FLIGHT:
                rows = await _page(pool, session_id, selection, next_chunk, offset)
                next_chunk = int(rows[-1]["chunk_no"]) + 1 if len(rows) == CHUNKS_PER_PAGE else None
                offset = 0
                if rows:
                    chunks = [(row["payload"], row["channels"]) for row in rows]
                    if decode is None:
                        done: asyncio.Future[FloatArray] = asyncio.get_running_loop().create_future()
                        done.set_result(codec.decode_columns(chunks, decoded))
                        in_flight.append((rows, done))
                    else:
                        in_flight.append((rows, asyncio.ensure_future(decode(chunks, decoded, None))))
            if not in_flight:
                return
            rows, decoding = in_flight[0]
            page = await decoding
            in_flight.popleft()
            block = _select(rows, page, decoded, len(names), selection)
            if block.size:
                yield block
    finally:
        for _, decoding in in_flight:
            decoding.cancel()


async def read_columns(
    pool: asyncpg.Pool,
    codec: ChunkCodec,
    session_id: uuid.UUID,
    names: Sequence[str],
    selection: Selection,
    *,
    max_samples: int,
    decode: PageDecoder | None = None,
    parts: int = 1,
) -> list[FloatArray]:
    """Every selected sample of `names`, one array per name (selection.start is ignored).

    Raises ReadOverLimit, before decoding anything, when the chunks in the window hold more than
    `max_samples`. With `decode`, the chunks are decoded in `parts` (e.g. one per worker thread) at once.
    """
    rows: list[asyncpg.Record] = []
    stored = 0
    next_chunk: int | None = 0
    while next_chunk is not None:
        page = await _page(pool, session_id, selection, next_chunk)
        next_chunk = int(page[-1]["chunk_no"]) + 1 if len(page) == CHUNKS_PER_PAGE else None
        rows += page
        stored += sum(row["sample_count"] for row in page)
        if stored > max_samples:
            raise ReadOverLimit(stored)
    decoded = needed_channels(names, selection)
    chunks = [(row["payload"], row["channels"]) for row in rows]
    if decode is None or parts < 2 or len(chunks) < 2 * parts:
        matrix = codec.decode_columns(chunks, decoded)
    else:
        matrix = np.empty((len(decoded), stored), dtype=np.float64)
        sizes = np.fromiter((row["sample_count"] for row in rows), dtype=np.intp, count=len(rows))
        cuts = [round(len(chunks) * part / parts) for part in range(parts + 1)]
        starts = np.concatenate(([0], np.cumsum(sizes)))
        await asyncio.gather(
            *(
                decode(chunks[low:high], decoded, matrix[:, starts[low] : starts[high]])
                for low, high in zip(cuts[:-1], cuts[1:], strict=True)
            )
        )
    keep = _kept(matrix, rows, decoded, dataclasses.replace(selection, start=ReadPosition()))
    if keep is None:
        return list(matrix[: len(names)])
    return list(np.compress(keep, matrix[: len(names)], axis=1))


async def _page(
    pool: asyncpg.Pool, session_id: uuid.UUID, selection: Selection, from_chunk: int, offset: int = 0
) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await store.chunks_in_order(
            conn,
            session_id,
            from_chunk=from_chunk,
            offset=offset,
            t_from=selection.t_from,
            t_to=selection.t_to,
            lap=selection.lap_counter,
            limit=CHUNKS_PER_PAGE,
        )


def _select(
    rows: Sequence[asyncpg.Record],
    page: FloatArray,
    decoded: Sequence[str],
    wanted: int,
    selection: Selection,
) -> Block:
    """The samples of a decoded page the selection keeps; rows 0..wanted-1 of `page` are the columns read."""
    # A position in a merged chunk counts from its first part (store.chunks_in_order).
    chunk_nos = np.fromiter((row["first_chunk_no"] for row in rows), dtype=np.int64, count=len(rows))
    sizes = np.fromiter((row["sample_count"] for row in rows), dtype=np.intp, count=len(rows))
    chunk_starts = np.concatenate(([0], np.cumsum(sizes[:-1]))).astype(np.intp)
    keep = _kept(page, rows, decoded, selection)
    if keep is None:
        return Block(list(page[:wanted]), chunk_nos, chunk_starts, None)
    offsets = np.flatnonzero(keep)
    # np.take along the samples gives C-ordered rows (page[:wanted, offsets] would not: JSON needs them so).
    return Block(list(np.take(page[:wanted], offsets, axis=1)), chunk_nos, chunk_starts, offsets)


def _kept(
    matrix: FloatArray, rows: Sequence[asyncpg.Record], decoded: Sequence[str], selection: Selection
) -> npt.NDArray[np.bool_] | None:
    """Which samples of the decoded chunks `rows` the selection keeps (None: every one)."""
    if sum(row["sample_count"] for row in rows) != matrix.shape[1]:
        raise CorruptChunk("telemetry chunk sample counts do not match their payloads")
    row_of = {name: index for index, name in enumerate(decoded)}
    keep: npt.NDArray[np.bool_] | None = None

    def narrow(condition: npt.NDArray[np.bool_]) -> None:
        nonlocal keep
        keep = condition if keep is None else keep & condition

    t = matrix[row_of["t"]]
    if selection.t_from is not None:
        narrow(t >= selection.t_from)
    if selection.t_to is not None:
        narrow((t < selection.t_to) if selection.t_to_exclusive else (t <= selection.t_to))
    if selection.lap_counter is not None:
        narrow(matrix[row_of["lap"]] == selection.lap_counter)
    for condition in selection.filters:
        narrow(condition.matches(matrix[row_of[condition.channel]]))
    # Samples before the read position (a chunk merged since a position was given out may start earlier).
    if any(row["skip"] for row in rows):
        skipped = np.ones(matrix.shape[1], dtype=bool)
        start = 0
        for row in rows:
            skipped[start : start + min(int(row["skip"]), int(row["sample_count"]))] = False
            start += int(row["sample_count"])
        narrow(skipped)
    if keep is None or bool(keep.all()):
        return None
    return keep


def concatenate(names: list[str], blocks: list[list[FloatArray]]) -> list[FloatArray]:
    """Blocks of the same channels, one after another: one array per channel."""
    if not blocks:
        return [np.empty(0, dtype=np.float64) for _ in names]
    if len(blocks) == 1:
        return blocks[0]
    return [np.concatenate([block[index] for block in blocks]) for index in range(len(names))]
