"""Telemetry ingest: a batch checked, authorized, durably committed as one compressed chunk with the laps it
completed, then published. Batches of one session are serialised by an in-process lock and by the session row's
lock; a retried batch (same key) is acknowledged again, never stored twice.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
import weakref
from collections.abc import Callable
from typing import Any

import asyncpg
import numpy as np

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.db.types import Connection
from pitbox.errors import NotFound
from pitbox.lifecycle import Lifecycle
from pitbox.realtime.publisher import Publisher
from pitbox.telemetry import store
from pitbox.telemetry.clock import resolve_clock
from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.errors import SessionEnded
from pitbox.telemetry.lap_progress import LapProgress
from pitbox.telemetry.laps import DEFAULT_SPLITS, Lap
from pitbox.telemetry.live_events import publish_batch
from pitbox.telemetry.models import FloatArray, IngestBatch
from pitbox.telemetry.prepare import IngestWorkers, PreparedBatch, prepare_message

#: Primary keys a batch can run into when another server stored into the same session while this one waited
#: for its lock: a batch key is stored once per session (`telemetry_batches`), a chunk number once
#: (`telemetry_data`; only a server from before migration 0005, which numbers chunks without the session row).
TAKEN_BY_ANOTHER_SERVER = frozenset({"telemetry_batches_pkey", "telemetry_data_pkey"})


class TelemetryWriter(Lifecycle):
    """Ingest of telemetry; holds the codec chunks are stored with, the worker processes and the lap progress."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        access: Access,
        publisher: Publisher,
        *,
        codec: ChunkCodec | None = None,
        on_lap_completed: Callable[[uuid.UUID, uuid.UUID, int], object] | None = None,
        on_samples: Callable[[uuid.UUID, uuid.UUID, dict[str, FloatArray]], object] | None = None,
        ingest_processes: int = 0,
    ) -> None:
        self._pool = pool
        self._access = access
        self._publisher = publisher
        self._codec = codec or stored_codec()
        self.workers = IngestWorkers(self._codec, ingest_processes)
        self._on_lap_completed = on_lap_completed
        # Called with every committed batch's columns (in-lap cues check their triggers); must not wait.
        self._on_samples = on_samples
        self.counters: collections.Counter[str] = collections.Counter()
        """Since start: samples_total and batches_total committed, duplicates_total, body_bytes_total."""
        self._progress = LapProgress(self._codec)
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def codec(self) -> ChunkCodec:
        """The codec chunks are stored with (compaction builds its own from its settings)."""
        return self._codec

    async def start(self) -> None:
        """Start the ingest worker processes now, so the first batch does not wait for them."""
        self.workers.start()

    async def close(self) -> None:
        """Stop the ingest worker processes (once requests have stopped)."""
        await self.workers.close()

    async def ingest_body(self, principal: Principal, body: bytes) -> dict[str, Any]:
        """Ingest the raw body of POST /api/telemetry; returns the ack (`duplicate` tells a retry apart)."""
        ack = await self._store(principal, await self.workers.prepare(body))
        self.counters["body_bytes_total"] += len(body)
        return ack

    async def ingest_message(self, principal: Principal, message: Any) -> dict[str, Any]:
        """Ingest one decoded message (a WebSocket `telemetry` message); returns the ack."""
        return await self._store(principal, prepare_message(message, self._codec))

    async def _store(self, principal: Principal, prepared: PreparedBatch) -> dict[str, Any]:
        """Authorize and commit a prepared batch, then publish it.

        The batch is committed before this returns; a batch whose key was stored before is not stored again
        and gets the first ack back with `duplicate: true`.
        """
        batch = prepared.batch
        await self._access.require_driver(principal, batch.driver_id, "write", scope="telemetry:write")
        lock = self._locks.get(batch.session_id)
        if lock is None:
            lock = self._locks[batch.session_id] = asyncio.Lock()
        async with lock:
            try:
                ack, laps, stored = await self._commit(prepared)
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name not in TAKEN_BY_ANOTHER_SERVER:
                    raise
                # Another server stored this batch, or a chunk under the number this one took, while this one
                # waited for the session's lock (the lock's statement saw the chunks and batches as they were
                # before it waited): asked again, the batch is a retry, or gets the next number.
                ack, laps, stored = await self._commit(prepared)
        if ack["duplicate"]:
            self.counters["duplicates_total"] += 1
        else:
            self.counters["samples_total"] += int(ack["samples"])
            self.counters["batches_total"] += 1
            publish_batch(self._publisher, stored, ack, laps)
            if self._on_samples is not None:
                self._on_samples(batch.session_id, batch.driver_id, stored.columns)
            if self._on_lap_completed is not None:
                for lap in laps:
                    self._on_lap_completed(batch.session_id, batch.driver_id, lap.number)
        return ack

    async def _commit(self, prepared: PreparedBatch) -> tuple[dict[str, Any], list[Lap], IngestBatch]:
        """Store the batch in one transaction: the ack, the laps it completed and the batch as stored (its
        clock resolved against the session when it was not the samples' own)."""
        batch, payload, names = prepared.batch, prepared.payload, prepared.names
        fed = False
        ack: dict[str, Any] = {
            "sessionId": str(batch.session_id),
            "driverId": str(batch.driver_id),
            "batchKey": batch.batch_key,
        }
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                session = await store.lock_session_for_ingest(
                    conn, batch.session_id, batch.driver_id, batch.batch_key
                )
                if session is None:
                    raise NotFound("session not found")
                if session["chunk_no"] is not None:  # stored before: a retry (its chunk may be merged since)
                    ack.update(
                        chunkNo=session["chunk_no"],
                        samples=session["sample_count"],
                        tStart=session["t_start"],
                        tEnd=session["t_end"],
                        lapsCompleted=list(session["laps_completed"] or ()),
                        clock=session["clock"] or "sample",
                        duplicate=True,
                    )
                    return ack, [], batch
                if session["status"] != "active":
                    raise SessionEnded("the session has ended; start a new one")
                if batch.pending is not None or payload is None:
                    batch = resolve_clock(
                        batch,
                        started_at=session["started_at"],
                        received_at=session["received_at"],
                        last_t=session["t_last"],
                    )
                    payload, names = self._codec.encode(batch.columns)
                chunk_no = int(session["next_chunk_no"])
                splits = tuple(session["sector_splits"] or ()) or DEFAULT_SPLITS
                progress = await self._progress.of(conn, batch.session_id, chunk_no, splits)
                fed = True
                laps, distance = progress.feed(batch.columns)
                laps = [lap for lap in laps if lap.lap_time > 0]
                if laps:
                    await store.insert_laps(conn, batch.session_id, batch.driver_id, laps)
                    await _keep_measured_length(conn, batch.session_id, session, laps)
                await store.insert_chunk(
                    conn,
                    batch.session_id,
                    chunk_no,
                    batch.driver_id,
                    batch.batch_key,
                    (batch.t_start, batch.t_end),
                    _lap_range(batch.columns),
                    names,
                    payload,
                    store.BatchStats(batch.count, list(batch.columns), distance, laps),
                    batch.clock,
                )
        except BaseException:
            if (
                fed
            ):  # the detector may have seen samples that were not committed: rebuild it from the database
                self._progress.forget(batch.session_id)
            raise
        progress.next_chunk = chunk_no + 1
        ack.update(
            chunkNo=chunk_no,
            samples=batch.count,
            tStart=batch.t_start,
            tEnd=batch.t_end,
            lapsCompleted=[lap.number for lap in laps],
            clock=batch.clock,
            duplicate=False,
        )
        return ack, laps, batch


def stored_codec() -> ChunkCodec:
    """The codec chunks are stored with."""
    # 16 mantissa bits (relative error <= 2**-17) for measured channels; time, position and lap distance
    # stay exact. That keeps real 40-channel telemetry under 64 bytes a sample (bench/codec.py).
    return ChunkCodec(mantissa_bits=16)


async def _keep_measured_length(
    conn: Connection, session_id: uuid.UUID, session: asyncpg.Record, laps: list[Lap]
) -> None:
    """A session with no measured lap length yet keeps the one its first valid lap measured (the session's own:
    the catalogue's track is not changed by a session's data)."""
    if session["measured_length_m"] is not None:
        return
    measured = [lap.length_m for lap in laps if lap.valid and lap.length_m is not None]
    if measured:
        await store.keep_measured_length(conn, session_id, measured[0])


def _lap_range(columns: dict[str, FloatArray]) -> tuple[int | None, int | None]:
    lap = columns.get("lap")
    if lap is None or np.isnan(lap).all():
        return None, None
    return int(np.nanmin(lap)), int(np.nanmax(lap))  # whole numbers within int32: parse_batch checked
