"""Compaction: a session's small consecutive chunks merged into chunks of up to `chunk_samples` samples.

A relay posting one second at a time leaves one row a second, and a row's fixed costs (tuple header, channel
names, index entries) and zstd's poorer ratio on a small block cost ~30 B a sample more than 600-sample chunks.
Once chunks are settled (older than `settle_s`, or their session ended) runs of them are merged, one
transaction per merge under the session row lock that ingest also takes: ingest and compaction of a session
take turns, and a reader sees either the old rows or the merged one (MVCC), never both or neither.

A merged chunk keeps the number of the last chunk it replaces and lists each one's sample count, so chunk
numbers given out (acks, read cursors) keep pointing at the same samples (`store.chunks_in_order`); batch
keys live in `telemetry_batches`, so a retry is recognised after the merge. A merge must decode to the very
values it replaces: a channel the merged encoding would round (it was constant or whole in a small chunk) is
kept exact instead. Decoding and encoding run on one worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Any

import asyncpg
import numpy as np
import structlog

from pitbox.db.types import Connection
from pitbox.errors import PitboxError
from pitbox.lifecycle import Lifecycle, Periodic
from pitbox.telemetry import store
from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.models import FloatArray

log = structlog.get_logger(__name__)

#: Chunks looked at first when planning a merge (enough for runs of batches of ten samples and more).
SPAN_WINDOW = 64
#: zstd level of merged chunks. Merging runs in the background, so it can afford more than ingest's level 3:
#: on real 40-channel telemetry level 6 takes 600 samples from 50.8 to 49.6 B a sample for +0.3 ms of
#: encoding (level 15: 48.5 B for +3 ms); decoding is as fast at any level.
MERGED_LEVEL = 6
#: Sessions one background round looks at (the most recently active first); the rest wait for the next round.
SESSIONS_PER_ROUND = 100


@dataclass(frozen=True)
class ChunkSpan:
    """A stored chunk as compaction sees it: the chunk numbers it covers, its samples, whether it settled."""

    first: int
    last: int
    samples: int
    settled: bool


@dataclass(frozen=True)
class Step:
    """One look at a session: the chunk numbers to merge into one chunk (or None), where the next look starts
    (None: nothing pending until the next batch), and whether to look again at once."""

    merge: tuple[int, int] | None
    resume_from: int | None
    look_again: bool


def plan_step(spans: Sequence[ChunkSpan], *, chunk_samples: int, ended: bool, complete: bool) -> Step:
    """The next merge among `spans` (a session's chunks in order, from where compaction looks), if any.

    A run of adjacent chunks, each settled (or the session ended), is merged once it cannot grow: the next
    chunk would take it past `chunk_samples`, or there is no next chunk and the session ended. `complete`:
    `spans` reach the session's last chunk; when not, they must be more than `chunk_samples` chunks long, so
    that a run starting at the first is always decided within them.
    """
    index = 0
    while index < len(spans):
        start = spans[index]
        if start.samples >= chunk_samples:
            index += 1
            continue
        if not (start.settled or ended):
            return Step(None, start.first, look_again=False)
        total, end = start.samples, index + 1
        while end < len(spans):
            following = spans[end]
            if following.first != spans[end - 1].last + 1 or total + following.samples > chunk_samples:
                break  # the run is as long as it will ever be
            if not (following.settled or ended):
                return Step(None, start.first, look_again=False)  # it may grow once the next one settles
            total += following.samples
            end += 1
        else:
            if not complete:
                return Step(None, start.first, look_again=True)  # look again from where the run starts
            if not ended:
                return Step(None, start.first, look_again=False)  # the next batch may still join it
        if end - index >= 2:
            last = spans[end - 1].last
            return Step((start.first, last), last + 1, look_again=True)
        index = end
    if complete:
        return Step(None, None, look_again=False)
    return Step(None, spans[-1].last + 1, look_again=True)


def merged_chunk(codec: ChunkCodec, rows: Sequence[asyncpg.Record]) -> store.MergedChunk | None:
    """Stored chunks (rows of `store.chunks_between`, in order) as one chunk holding the union of their
    channels (NaN where a chunk lacks one); None when no encoding gives back their very values."""
    names = list(dict.fromkeys(chain.from_iterable(row["channels"] for row in rows)))
    matrix = codec.decode_columns([(row["payload"], row["channels"]) for row in rows], names)
    encoded = encode_unchanged(codec, names, matrix)
    if encoded is None:
        return None
    payload, channels = encoded
    lap_firsts = [row["lap_first"] for row in rows if row["lap_first"] is not None]
    lap_lasts = [row["lap_last"] for row in rows if row["lap_last"] is not None]
    return store.MergedChunk(
        driver_id=rows[0]["driver_id"],
        t_range=(min(row["t_start"] for row in rows), max(row["t_end"] for row in rows)),
        lap_range=(min(lap_firsts, default=None), max(lap_lasts, default=None)),
        part_sizes=[size for row in rows for size in (row["part_sizes"] or (row["sample_count"],))],
        channels=channels,
        payload=payload,
        received_at=max(row["received_at"] for row in rows),
        clock=_merged_clock({row["clock"] for row in rows}),
    )


def _merged_clock(clocks: set[str | None]) -> str | None:
    """The clock of chunks merged into one: theirs when they share it, else mixed (None is `sample`)."""
    return clocks.pop() if len(clocks) == 1 else "mixed"


def encode_unchanged(
    codec: ChunkCodec, names: Sequence[str], matrix: FloatArray
) -> tuple[bytes, list[str]] | None:
    """Encode channels decoded from stored chunks (rows of `matrix`) so that they decode to the same values.

    Re-encoding is lossless except where a channel changes kind: a value a small chunk stored exactly (the
    channel was constant or whole there) would be rounded in the merged chunk. Such channels are kept exact.
    They are foreseen from the codec's rounding rule, and the result is checked, so a wrong guess costs an
    encoding more, never a changed value.
    """
    settings = codec.settings
    exact = _rounded_by_codec(names, matrix, settings)
    for _ in range(2):
        coder = (
            ChunkCodec(**{**settings, "exact_channels": settings["exact_channels"] | exact})
            if exact
            else codec
        )
        payload, order = coder.encode(dict(zip(names, matrix, strict=True)))
        changed = _changed_channels(names, matrix, coder.decode_columns([(payload, order)], names))
        if not changed:
            return payload, order
        exact |= changed
    return None


def _rounded_by_codec(names: Sequence[str], matrix: FloatArray, settings: dict[str, Any]) -> frozenset[str]:
    """Channels with a present value that float32 coding (`mantissa_bits` kept, all for the full-precision
    channels) would change."""
    rows = [index for index, name in enumerate(names) if name not in settings["exact_channels"]]
    if not rows:
        return frozenset()
    values = matrix[rows]
    with np.errstate(over="ignore", invalid="ignore"):
        bits = values.astype(np.float32).view(np.uint32).astype(np.int64)
    drop = 23 - int(settings["mantissa_bits"])
    if drop:
        full = np.fromiter(
            (names[row] in settings["full_precision_channels"] for row in rows), bool, len(rows)
        )
        bits = np.where(full[:, None], bits, ((bits + (1 << (drop - 1))) >> drop) << drop)
    kept = bits.astype(np.uint32).view(np.float32).astype(np.float64)
    changed = ~((kept == values) | np.isnan(values))
    return frozenset(names[rows[index]] for index in np.flatnonzero(changed.any(axis=1)).tolist())


def _changed_channels(names: Sequence[str], expected: FloatArray, decoded: FloatArray) -> frozenset[str]:
    same = (decoded == expected) | (np.isnan(decoded) & np.isnan(expected))
    return frozenset(names[index] for index in np.flatnonzero(~same.all(axis=1)).tolist())


class ChunkCompactor(Lifecycle):
    """Merges the settled small chunks of sessions; between `start()` and `close()`, every `every_s` seconds
    (`compact_pending`; never when 0)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        codec: ChunkCodec,
        *,
        chunk_samples: int = 600,
        settle_s: float = 60.0,
        every_s: float = 0.0,
    ) -> None:
        """`codec` is ingest's; the compactor encodes like it, at `MERGED_LEVEL` at least, on its worker thread."""
        self._pool = pool
        settings = codec.settings
        self._codec = ChunkCodec(**{**settings, "level": max(int(settings["level"]), MERGED_LEVEL)})
        self._chunk_samples = chunk_samples
        self._settle_s = settle_s
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="chunk-compaction")
        self._rounds = Periodic("chunk-compaction", every_s, self._round)
        self.counters: collections.Counter[str] = collections.Counter()
        """Since start: merges_total, chunks_merged_total, and merges_skipped_total (left as they were)."""

    async def compact_pending(self) -> int:
        """One round: compact every session marked for it that ended or holds a settled chunk; merges made."""
        merges = 0
        for session_id in await store.sessions_to_compact(self._pool, self._settle_s, SESSIONS_PER_ROUND):
            try:
                merges += await self.compact_session(session_id)
            except asyncpg.PostgresError as error:  # this session's data; the others still get their turn
                log.warning(
                    "compaction_session_failed", session_id=str(session_id), error=type(error).__name__
                )
        return merges

    async def compact_session(self, session_id: uuid.UUID) -> int:
        """Merge what has settled in a session, one transaction per merge; the number of merges made."""
        merges = 0
        while True:
            step, replaced = await self._step(session_id)
            if replaced:
                merges += 1
                self.counters["merges_total"] += 1
                self.counters["chunks_merged_total"] += replaced
            if not step.look_again:
                return merges

    async def _step(self, session_id: uuid.UUID) -> tuple[Step, int]:
        """Look at the session under its lock and make the next merge, if any; with the chunks it replaced."""
        replaced = 0
        async with self._pool.acquire() as conn, conn.transaction():
            session = await store.lock_session_for_compaction(conn, session_id)
            if session is None or session["compact_from_chunk"] is None:
                return Step(None, None, look_again=False), 0
            step = await self._plan(
                conn, session_id, session["compact_from_chunk"], session["status"] == "ended"
            )
            if step.merge is not None:
                first, last = step.merge
                chunks = await store.chunks_between(conn, session_id, first, last)
                merged = await self._merge(session_id, chunks)
                if merged is not None:
                    await store.replace_chunks(conn, session_id, first, last, merged, step.resume_from)
                    replaced = len(chunks)
            if not replaced and step.resume_from != session["compact_from_chunk"]:
                await store.set_compact_from(conn, session_id, step.resume_from)
        if step.merge is not None and not replaced:
            self.counters["merges_skipped_total"] += 1
        return step, replaced

    async def _plan(self, conn: Connection, session_id: uuid.UUID, from_chunk: int, ended: bool) -> Step:
        """`plan_step` over the chunks from `from_chunk` on: a few first, as many as a run can hold if need be."""
        for window in (SPAN_WINDOW, self._chunk_samples + 1):
            rows = await store.chunk_spans(conn, session_id, from_chunk, self._settle_s, window)
            spans = [
                ChunkSpan(row["first_chunk_no"], row["chunk_no"], row["sample_count"], row["settled"])
                for row in rows
            ]
            complete = len(rows) < window
            step = plan_step(spans, chunk_samples=self._chunk_samples, ended=ended, complete=complete)
            if complete or step.merge is not None or step.resume_from != from_chunk:
                return step
        return step  # pragma: no cover - a run never holds more than chunk_samples chunks

    async def _merge(self, session_id: uuid.UUID, chunks: list[asyncpg.Record]) -> store.MergedChunk | None:
        loop = asyncio.get_running_loop()
        try:
            merged = await loop.run_in_executor(self._executor, merged_chunk, self._codec, chunks)
        except PitboxError as error:  # a chunk that does not decode: leave it as it is, for a person to see
            log.warning("compaction_unreadable_chunk", session_id=str(session_id), error=error.message)
            return None
        if merged is None:
            log.warning("compaction_not_lossless", session_id=str(session_id), chunks=len(chunks))
        return merged

    async def start(self) -> None:
        """Start the background rounds (none when `every_s` is 0)."""
        await self._rounds.start()

    async def close(self) -> None:
        """Stop the background rounds, then the worker thread."""
        try:
            await self._rounds.close()
        finally:
            # A merge in progress finishes on its thread; the event loop does not wait on it meanwhile.
            await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def _round(self) -> None:
        merges = await self.compact_pending()
        if merges:
            log.info("chunks_compacted", merges=merges)
