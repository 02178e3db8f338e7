"""What ingest remembers of each session between batches: its lap detector, the next chunk it expects, and the
last sample (for the distance driven across batches).

Per session, a `LapDetector` lives in memory together with the number of the next chunk it expects. When it is
missing (restart, eviction) or stale (another instance stored a chunk in between) it is rebuilt by replaying the
session's stored chunks, so the laps never depend on which process took a batch.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from pitbox.db.types import Connection
from pitbox.telemetry import store
from pitbox.telemetry.codec import ChunkCodec
from pitbox.telemetry.laps import LAP_CHANNELS, LAP_SIGNALS, Lap, LapDetector
from pitbox.telemetry.models import FloatArray

#: Largest gap between two samples still counted as driven distance (a longer one is a pause or a tow).
MAX_DISTANCE_GAP_S = 1.0
#: Sessions whose lap detector is kept in memory; the least recently fed is rebuilt when needed again.
TRACKED_SESSIONS = 4096


@dataclass
class SessionProgress:
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


class LapProgress:
    """The `SessionProgress` of the sessions fed most recently (at most TRACKED_SESSIONS)."""

    def __init__(self, codec: ChunkCodec) -> None:
        self._codec = codec
        self._progress: OrderedDict[uuid.UUID, SessionProgress] = OrderedDict()

    def forget(self, session_id: uuid.UUID) -> None:
        """Rebuild this session's progress from the database next time (it may have seen uncommitted samples)."""
        self._progress.pop(session_id, None)

    async def of(
        self, conn: Connection, session_id: uuid.UUID, chunk_no: int, splits: tuple[float, ...]
    ) -> SessionProgress:
        """The session's progress, ready for chunk `chunk_no` (rebuilt from the stored chunks when needed)."""
        progress = self._progress.get(session_id)
        if progress is None or progress.next_chunk != chunk_no:
            progress = SessionProgress(LapDetector(splits=splits), next_chunk=0)
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
