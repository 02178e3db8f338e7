"""Telemetry: ingest batches (checked, authorized, durably committed as one compressed chunk, laps detected,
published after commit) and read them back (pages of columns, CSV streams, downsampled traces, lap comparison).

Lap detection is incremental: per session, a `LapDetector` lives in memory together with the number of the
next chunk it expects. When it is missing (restart, eviction) or stale (another instance stored a chunk in
between) it is rebuilt by replaying the session's stored chunks, so the laps never depend on which process
took a batch. Batches of one session are serialised by an in-process lock and by the session row's lock.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import orjson

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.db.types import Connection
from pitbox.errors import Conflict, Invalid, NotFound
from pitbox.lifecycle import Lifecycle
from pitbox.realtime.publisher import Publisher, session_channel, telemetry_channel
from pitbox.sessions import store as session_store
from pitbox.telemetry import store
from pitbox.telemetry.clock import resolve_clock
from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.codec_threads import CodecThreads
from pitbox.telemetry.compare import compare_laps, lap_samples
from pitbox.telemetry.downsample import downsample_columns
from pitbox.telemetry.ingest import invalid
from pitbox.telemetry.laps import DEFAULT_SPLITS, LAP_CHANNELS, LAP_SIGNALS, Lap, LapDetector
from pitbox.telemetry.models import BestLap, CompletedLap, FloatArray, IngestBatch
from pitbox.telemetry.parquet import ParquetStream
from pitbox.telemetry.prepare import IngestWorkers, PreparedBatch, prepare_message
from pitbox.telemetry.query import (
    MAX_DOWNSAMPLE_INPUT,
    ReadPosition,
    TelemetryQuery,
    csv_header,
    csv_rows,
    display_column,
    output_channels,
)
from pitbox.telemetry.reader import Block, Selection, TooManySamples, read_blocks, read_columns
from pitbox.tracks.service import DrivenOn, agreed_length, refuse_other_track

#: Largest gap between two samples still counted as driven distance (a longer one is a pause or a tow).
MAX_DISTANCE_GAP_S = 1.0
#: Samples formatted per CSV write (about 1 MB of text at 40 channels).
CSV_ROWS_PER_WRITE = 5_000
#: Sessions whose lap detector is kept in memory; the least recently fed is rebuilt when needed again.
TRACKED_SESSIONS = 4096
#: Primary keys a batch can run into when another server stored into the same session while this one waited
#: for its lock: a batch key is stored once per session (`telemetry_batches`), a chunk number once
#: (`telemetry_data`; only a server from before migration 0005, which numbers chunks without the session row).
TAKEN_BY_ANOTHER_SERVER = frozenset({"telemetry_batches_pkey", "telemetry_data_pkey"})


@dataclass
class _SessionProgress:
    """What ingest remembers about a session between batches."""

    detector: LapDetector
    next_chunk: int
    last_t: float | None = None
    last_speed: float | None = None

    def feed(self, columns: dict[str, FloatArray]) -> tuple[list[Lap], float]:
        """Laps completed by the next batch, and the distance (m) driven in it."""
        laps = []
        if any(name in columns for name in LAP_SIGNALS):
            laps = self.detector.feed({name: columns[name] for name in LAP_CHANNELS if name in columns})
        distance = 0.0
        t = columns["t"]
        speed = columns.get("speed")
        if speed is not None:
            if self.last_t is not None and self.last_speed is not None:
                t = np.concatenate(([self.last_t], t))
                speed = np.concatenate(([self.last_speed], speed))
            dt = np.diff(t)
            moving = (dt > 0) & (dt <= MAX_DISTANCE_GAP_S)
            distance = float(np.nansum(np.where(moving, speed[:-1] / 3.6 * dt, 0.0)))
            present = np.flatnonzero(~np.isnan(speed))
            if present.size:
                self.last_speed = float(speed[present[-1]])
        self.last_t = float(columns["t"][-1])
        return laps, max(distance, 0.0)


def lap_from_row(row: asyncpg.Record) -> Lap:
    """A stored lap as the lap detector's `Lap`."""
    reason = row["invalid_reason"]
    return Lap(
        number=row["lap_number"],
        t_start=row["t_start"],
        t_end=row["t_end"],
        lap_time=row["lap_time_s"],
        sectors=tuple(row["sector_times"]),
        valid=row["valid"],
        invalid_reasons=tuple(reason.split(",")) if reason else (),
        length_m=row["length_m"],
    )


def lap_event(session_id: uuid.UUID, driver_id: uuid.UUID, lap: Lap) -> dict[str, Any]:
    """The `lap_completed` message published on the session's and the driver's channels."""
    return {
        "type": "lap_completed",
        "sessionId": str(session_id),
        "driverId": str(driver_id),
        "lap": {
            "sessionId": str(session_id),
            "lap": lap.number,
            "tStart": lap.t_start,
            "tEnd": lap.t_end,
            "lapTime": lap.lap_time,
            "sectors": list(lap.sectors),
            "valid": lap.valid,
            "invalidReasons": list(lap.invalid_reasons),
        },
    }


class TelemetryService(Lifecycle):
    """Ingest and reading of telemetry; holds the codec and the per-session lap detectors."""

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
        # 16 mantissa bits (relative error <= 2**-17) for measured channels; time, position and lap distance
        # stay exact. That keeps real 40-channel telemetry under 64 bytes a sample (bench/codec.py).
        self._codec = codec or ChunkCodec(mantissa_bits=16)
        self.workers = IngestWorkers(self._codec, ingest_processes)
        # Reads decode on threads, each with its own codec: zstd and numpy release the GIL.
        self._decoders = CodecThreads(lambda: self._codec.copy())
        self._on_lap_completed = on_lap_completed
        # Called with every committed batch's columns (in-lap cues check their triggers); must not wait.
        self._on_samples = on_samples
        self.counters: collections.Counter[str] = collections.Counter()
        """Since start: samples_total and batches_total committed, duplicates_total, body_bytes_total."""
        self._progress: OrderedDict[uuid.UUID, _SessionProgress] = OrderedDict()
        self._locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- ingest ------------------------------------------------------------------------------------------

    @property
    def codec(self) -> ChunkCodec:
        """The codec chunks are stored with (compaction builds its own from its settings)."""
        return self._codec

    async def start(self) -> None:
        """Start the ingest worker processes now, so the first batch does not wait for them."""
        self.workers.start()

    async def close(self) -> None:
        """Stop the ingest worker processes and the read decoding threads (once requests have stopped)."""
        await self.workers.close()
        self._decoders.close()

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
            self._publish(stored, ack, laps)
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
                    raise Conflict("the session has ended; start a new one", code="session_ended")
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
                progress = await self._progress_of(conn, batch.session_id, chunk_no, splits)
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
                self._progress.pop(batch.session_id, None)
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

    async def _progress_of(
        self, conn: Connection, session_id: uuid.UUID, chunk_no: int, splits: tuple[float, ...]
    ) -> _SessionProgress:
        progress = self._progress.get(session_id)
        if progress is None or progress.next_chunk != chunk_no:
            progress = _SessionProgress(LapDetector(splits=splits), next_chunk=0)
            while progress.next_chunk < chunk_no:
                rows = await store.chunks_in_order(
                    conn, session_id, from_chunk=progress.next_chunk, limit=256
                )
                if not rows:
                    break
                for row in rows:
                    progress.feed(self._codec.decode(row["payload"], row["channels"]))
                progress.next_chunk = int(rows[-1]["chunk_no"]) + 1
            progress.next_chunk = chunk_no
            self._progress[session_id] = progress
            while len(self._progress) > TRACKED_SESSIONS:
                self._progress.popitem(last=False)
        self._progress.move_to_end(session_id)
        return progress

    def _publish(self, batch: IngestBatch, ack: dict[str, Any], laps: list[Lap]) -> None:
        event = {
            "type": "telemetry",
            "sessionId": ack["sessionId"],
            "driverId": ack["driverId"],
            "chunkNo": ack["chunkNo"],
            "count": ack["samples"],
            "tStart": ack["tStart"],
            "tEnd": ack["tEnd"],
            "clock": ack["clock"],
            # Column-wise whatever shape came in, encoded once for both channels (numpy arrays encode fast).
            "columns": orjson.Fragment(orjson.dumps(batch.columns, option=orjson.OPT_SERIALIZE_NUMPY)),
        }
        channels = (telemetry_channel(batch.driver_id), session_channel(batch.session_id))
        for channel in channels:
            self._publisher.publish(channel, event)
        for lap in laps:
            lap_message = lap_event(batch.session_id, batch.driver_id, lap)
            for channel in channels:
                self._publisher.publish(channel, lap_message)

    # -- reading -----------------------------------------------------------------------------------------

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
        columns = _concatenate(names, blocks)
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
                        yield csv_rows(names, _concatenate(names, pending))
                        pending, pending_rows = [], 0
            if pending:
                yield csv_rows(names, _concatenate(names, pending))

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
                invalid(condition.channel, "is not a channel of this session", code="unknown_channels")
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
        except TooManySamples:
            invalid("points", f"more than {MAX_DOWNSAMPLE_INPUT} samples to downsample; narrow from/to")
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

    # -- laps ----------------------------------------------------------------------------------------------

    async def laps(self, principal: Principal, session_id: uuid.UUID) -> list[CompletedLap]:
        """The completed laps of a session, in order."""
        await self._access.require_session(principal, session_id, scope="telemetry:read")
        return [CompletedLap.from_row(row) for row in await store.laps_of_session(self._pool, session_id)]

    async def compare(
        self,
        principal: Principal,
        session_id: uuid.UUID,
        lap_number: int,
        other: tuple[uuid.UUID, int],
        channels: list[str],
        points: int | None,
    ) -> dict[str, Any]:
        """Lap `lap_number` (`a`) against another lap (`b`, of any session the caller may read), aligned on
        distance; `delta` is a's elapsed time minus b's at each distance: positive where a is behind, the sign
        coaching uses (b is the reference)."""
        await self._access.require_session(principal, session_id, scope="telemetry:read")
        if other[0] != session_id:
            await self._access.require_session(principal, other[0], scope="telemetry:read")
        session_a, lap_a = await self._stored_lap(session_id, lap_number)
        session_b, lap_b = await self._stored_lap(other[0], other[1])
        refuse_other_track(_driven_on(session_a, lap_a), _driven_on(session_b, lap_b), field="with")
        samples_a = await self._lap_samples(session_a, lap_a, channels)
        samples_b = await self._lap_samples(session_b, lap_b, channels)
        # The track's length where this lap agrees with it (else what the session measured, else the data's).
        length = agreed_length(
            lap_a["length_m"], session_a["catalogue_length_m"], session_a["measured_length_m"]
        )
        # The other lap is the reference, as in coaching: delta = this lap's time - the other's (+: behind).
        result = compare_laps(samples_b, samples_a, channels=channels, points=points, track_length=length)
        return {
            "a": {**CompletedLap.from_row(lap_a).wire(), "channels": result.b},
            "b": {**CompletedLap.from_row(lap_b).wire(), "channels": result.a},
            "trackLength": result.track_length,
            "distance": result.distance,
            "delta": result.delta,
        }

    async def time_at_lap_distance(
        self, principal: Principal, session_id: uuid.UUID, lap_number: int, fraction: float
    ) -> float:
        """Session time `t` at which lap `lap_number` passed `fraction` (0..1) of the lap distance."""
        await self._access.require_session(principal, session_id, scope="telemetry:read")
        session, lap = await self._stored_lap(session_id, lap_number)
        columns = await self._lap_samples(session, lap, [])
        if "lapDistPct" not in columns:
            raise Invalid(
                "this session has no lapDistPct channel to place a lap distance", code="missing_channels"
            )
        pct = np.nan_to_num(columns["lapDistPct"], nan=0.0).copy()
        # The samples just before and after the lap's lines read near 1 and near 0: before 0, after 1.
        if pct.size > 1 and pct[0] > 0.5:
            pct[0] -= 1.0
        if pct.size > 1 and pct[-1] < 0.5:
            pct[-1] += 1.0
        return float(np.interp(fraction, np.maximum.accumulate(pct), columns["t"]))

    async def _stored_lap(
        self, session_id: uuid.UUID, lap_number: int
    ) -> tuple[asyncpg.Record, asyncpg.Record]:
        """(the session with its track, the stored lap); NotFound for a lap the session does not have."""
        row = await store.lap_of_session(self._pool, session_id, lap_number)
        if row is None:
            raise NotFound(f"lap {lap_number} of session {session_id} not found")
        session = await session_store.session_by_id(self._pool, session_id)
        assert session is not None
        return session, row

    async def _lap_samples(
        self, session: asyncpg.Record, row: asyncpg.Record, channels: list[str]
    ) -> dict[str, FloatArray]:
        """A stored lap's samples of `channels`, with what aligning it needs."""
        session_id, lap_number = session["id"], row["lap_number"]
        wanted = [
            "t",
            *(name for name in ("lapDistPct", "lapDist", "speed", *channels) if name in session["channels"]),
        ]
        names = list(dict.fromkeys(wanted))
        # One second either side: the samples around the line crossings that interpolation needs.
        selection = Selection(t_from=row["t_start"] - 1.0, t_to=row["t_end"] + 1.0)
        blocks = [block.columns async for block in self._blocks(session_id, names, selection)]
        columns = dict(zip(names, _concatenate(names, blocks), strict=True))
        if columns["t"].size < 2:
            raise Invalid(f"lap {lap_number} has no stored samples", code="lap_too_short")
        return lap_samples(columns, lap_from_row(row))

    async def best_laps(
        self,
        principal: Principal,
        driver_id: uuid.UUID | None,
        track_id: uuid.UUID | None,
        car: str | None,
        limit: int,
    ) -> list[BestLap]:
        """The best valid lap per driver, track and car, fastest first, among the drivers the caller sees."""
        if driver_id is not None:
            await self._access.require_driver(principal, driver_id, scope="telemetry:read")
            drivers: list[uuid.UUID] | None = [driver_id]
        else:
            self._access.require_scope(principal, "telemetry:read")
            drivers = await self._access.visible_drivers(principal)
        rows = await store.best_laps(self._pool, drivers, track_id, car, limit)
        return [BestLap.from_row(row) for row in rows]


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


def _driven_on(session: asyncpg.Record, lap: asyncpg.Record) -> DrivenOn:
    return DrivenOn(session["track_id"], session["track_name"], lap["length_m"])


def _lap_range(columns: dict[str, FloatArray]) -> tuple[int | None, int | None]:
    lap = columns.get("lap")
    if lap is None or np.isnan(lap).all():
        return None, None
    return int(np.nanmin(lap)), int(np.nanmax(lap))  # whole numbers within int32: parse_batch checked


def _concatenate(names: list[str], blocks: list[list[FloatArray]]) -> list[FloatArray]:
    if not blocks:
        return [np.empty(0, dtype=np.float64) for _ in names]
    if len(blocks) == 1:
        return blocks[0]
    return [np.concatenate([block[index] for block in blocks]) for index in range(len(names))]
