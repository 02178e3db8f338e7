"""The relay's durable store-and-forward spool: one SQLite file in WAL mode, written before anything is sent.

Tables: `sessions` (one per relay session: car, sim/track/car info, its clock, state, the server's id once
created), `samples` (one row per sample, in arrival order: `seq`; `batch` set when sealed into a batch),
`batches` (a sealed batch: never changes once written, so a resend after a crash carries the same samples
under the same batch id), `rejected` (batches the server refused as invalid, kept rather than lost),
`meta` (this spool's id, which prefixes every batch id).

Durability: `synchronous=FULL`, so a committed sample survives a killed relay and a machine restart.
Samples are buffered by `append` and committed in groups by `flush` (the relay calls it every 250 ms, 75 ms
with --live). The same commit seals the batches that are due, so a batch is durable before it is sent and
the sender never writes on its own; acknowledged batches are forgotten in the next commit (an
acknowledgement lost in a crash only means the batch is sent again under its id: the server answers
"duplicate").
Size: bounded by `max_bytes` of live pages; when the spool is full new samples are refused (counted as
`dropped`, announced loudly by the relay) until the sender frees room: what is already spooled is never
thrown away to make room.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pitbox.relay.sources.base import SessionInfo

__all__ = ["Batch", "SpoolSession", "Spool"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    car_index INTEGER NOT NULL,
    state TEXT NOT NULL,               -- pending (car not moved yet), active, ended
    sim TEXT, track_name TEXT, track_config TEXT, track_length_m REAL, car TEXT,
    created_at REAL NOT NULL,          -- wall clock of the first sample
    started_at REAL,                   -- wall clock of the first movement
    last_t REAL, last_clock REAL, last_wall REAL,
    end_reason TEXT,
    server_id TEXT, server_name TEXT, creating INTEGER NOT NULL DEFAULT 0, part INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS samples (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session INTEGER NOT NULL,
    t REAL NOT NULL,
    received REAL NOT NULL,
    body BLOB NOT NULL,
    batch INTEGER
);
CREATE INDEX IF NOT EXISTS samples_by_batch ON samples (batch, seq);
CREATE INDEX IF NOT EXISTS samples_by_session ON samples (session, seq);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    batch INTEGER PRIMARY KEY, session INTEGER, server_id TEXT, reason TEXT, body BLOB, at REAL
);
"""


@dataclass(frozen=True, slots=True)
class SpoolSession:
    """A session as the spool holds it."""

    id: int
    car_index: int
    state: str
    info: SessionInfo
    created_at: float
    started_at: float | None
    last_t: float | None
    last_clock: float | None
    last_wall: float | None
    server_id: str | None
    server_name: str | None
    creating: bool
    part: int


@dataclass(frozen=True, slots=True)
class Batch:
    """A sealed batch: its id (the idempotency key), its session and its samples as JSON texts."""

    id: int
    key: str
    session: int
    bodies: list[bytes]
    t_first: float


class Spool:
    """The spool file in `directory`; `max_bytes` bounds it (None: unbounded).

    Batches hold one session's samples in order, at most `batch_s` seconds of data (`t`) and `max_samples`;
    one is sealed once it is full, once its oldest sample waited `batch_s` seconds, when its session ended,
    or at once with `live`. Only samples of started sessions are sealed.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int | None = None,
        batch_s: float = 1.0,
        live: bool = False,
        max_samples: int = 2000,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "spool.sqlite3"
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'spool_id'").fetchone()
        if row is None:
            self.spool_id = uuid.uuid4().hex[:12]
            self._db.execute("INSERT INTO meta VALUES ('spool_id', ?)", (self.spool_id,))
        else:
            self.spool_id = str(row[0])
        self.max_bytes = max_bytes
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._pending: list[tuple[int, float, float, bytes]] = []
        self._clocks: dict[int, tuple[float, float | None, float]] = {}
        self.full = False
        self._checked_at = 0.0
        self._since_check = 0
        self.dropped = 0
        self.spooled_this_run = 0
        self.batch_s, self.live, self.max_samples = batch_s, live, max_samples
        # What the spool knows without asking the file: sessions waiting for their car to move, sessions
        # with samples not sealed yet (a --live group of any other session is sealed as it is written),
        # the newest sealed batch, the newest acknowledged one (its rows go with the next commit) and the
        # ended sessions the sender has still to end on the server.
        self._waiting = {
            int(r[0]) for r in self._db.execute("SELECT id FROM sessions WHERE state = 'pending'")
        }
        self._loose = {
            int(r[0]) for r in self._db.execute("SELECT DISTINCT session FROM samples WHERE batch IS NULL")
        }
        self._sealed_through = int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM batches").fetchone()[0])
        self._acked_through = 0
        self._acked_rows = 0
        self._ended = int(
            self._db.execute("SELECT COUNT(*) FROM sessions WHERE state = 'ended'").fetchone()[0]
        )

    def close(self) -> None:
        """Commit what is buffered and close the file."""
        self.flush()
        self._db.close()

    # -- the receiving side ---------------------------------------------------------------------------

    def open_session(self, car_index: int, info: SessionInfo, *, pending: bool, now: float) -> int:
        """A new session (pending until the car moves, when `pending`); its id."""
        self.flush()
        cursor = self._db.execute(
            "INSERT INTO sessions (car_index, state, sim, track_name, track_config, track_length_m, car,"
            " created_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (car_index, "pending" if pending else "active", *_info_row(info), now, None if pending else now),
        )
        session = int(cursor.lastrowid or 0)
        if pending:
            self._waiting.add(session)
        return session

    def activate(self, session: int, now: float) -> None:
        """The car moved: the session starts (its pre-roll samples go with it)."""
        self.flush()
        self._db.execute("UPDATE sessions SET state = 'active', started_at = ? WHERE id = ?", (now, session))
        self._waiting.discard(session)

    def update_info(self, session: int, info: SessionInfo) -> None:
        """Fill in what the packets said since (only until the server session is created)."""
        self._db.execute(
            "UPDATE sessions SET sim = ?, track_name = ?, track_config = ?, track_length_m = ?, car = ?"
            " WHERE id = ? AND server_id IS NULL",
            (*_info_row(info), session),
        )

    def end_session(self, session: int, reason: str) -> None:
        """No more samples for this session; a pending one is dropped with its pre-roll."""
        self.flush()
        state = self._db.execute("SELECT state FROM sessions WHERE id = ?", (session,)).fetchone()
        if state is None:
            return
        if state[0] == "pending":
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM samples WHERE session = ?", (session,))
            self._db.execute("DELETE FROM sessions WHERE id = ?", (session,))
            self._db.execute("COMMIT")
            self._waiting.discard(session)
            self._loose.discard(session)
        elif state[0] != "ended":
            self._db.execute(
                "UPDATE sessions SET state = 'ended', end_reason = ? WHERE id = ?", (reason, session)
            )
            self._ended += 1

    def trim_pre_roll(self, session: int, keep_from_t: float) -> None:
        """Forget a pending session's samples older than `keep_from_t` (the pre-roll window)."""
        self.flush()
        self._db.execute(
            "DELETE FROM samples WHERE session = ? AND t < ? AND batch IS NULL", (session, keep_from_t)
        )

    def append(self, session: int, t: float, clock: float | None, body: bytes, now: float) -> bool:
        """Buffer one sample (committed by `flush`); False when the spool is full and it was refused."""
        self._since_check += 1
        if self.max_bytes is not None and (
            now - self._checked_at > 0.5 or self._since_check >= 100 or self.full
        ):
            self._check_size(now)
        if self.full:
            self.dropped += 1
            return False
        self._pending.append((session, t, now, body))
        self._clocks[session] = (t, clock, now)
        return True

    def flush(self) -> int:
        """Commit the buffered samples, seal the batches that are due and forget the acknowledged ones, in
        one transaction; how many samples were committed. When the commit fails the samples stay buffered."""
        rows, self._pending = self._pending, []
        if not rows and not self._acked_rows and not self._loose - self._waiting:
            return 0
        loose = set(self._loose)
        try:
            self._db.execute("BEGIN")
            if self._acked_rows:
                self._db.execute("DELETE FROM samples WHERE batch <= ?", (self._acked_through,))
                self._db.execute("DELETE FROM batches WHERE id <= ?", (self._acked_through,))
            sealed = self._insert(rows, loose)
            if loose - self._waiting:
                sealed = max(sealed, self._seal_due(time.time(), loose))
            if self._clocks:
                self._db.executemany(
                    "UPDATE sessions SET last_t = ?, last_clock = ?, last_wall = ? WHERE id = ?",
                    [(t, clock, wall, session) for session, (t, clock, wall) in self._clocks.items()],
                )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._pending[:0] = rows
            raise
        self._loose = loose
        self._sealed_through = max(self._sealed_through, sealed)
        self._acked_rows = 0
        self._clocks.clear()
        self.spooled_this_run += len(rows)
        return len(rows)

    def _insert(self, rows: list[tuple[int, float, float, bytes]], loose: set[int]) -> int:
        """Write the rows; with `live` those of a started session with nothing older waiting are sealed as
        they are written (at most `max_samples` a batch). The newest batch id sealed, or 0."""
        direct: dict[int, list[tuple[int, float, float, bytes]]] = {}
        plain: list[tuple[int, float, float, bytes]] = []
        for row in rows:
            session = row[0]
            if self.live and session not in loose and session not in self._waiting:
                direct.setdefault(session, []).append(row)
            else:
                plain.append(row)
                loose.add(session)
        newest = 0
        for session, group in direct.items():
            for start in range(0, len(group), self.max_samples):
                part = group[start : start + self.max_samples]
                cursor = self._db.execute(
                    "INSERT INTO batches (session, count) VALUES (?, ?)", (session, len(part))
                )
                newest = int(cursor.lastrowid or 0)
                self._db.executemany(
                    "INSERT INTO samples (session, t, received, body, batch) VALUES (?, ?, ?, ?, ?)",
                    [(*row, newest) for row in part],
                )
        if plain:
            self._db.executemany(
                "INSERT INTO samples (session, t, received, body) VALUES (?, ?, ?, ?)", plain
            )
        return newest

    def _seal_due(self, now: float, loose: set[int], limit: int = 100) -> int:
        """Seal the due batches, oldest sample first (inside `flush`'s transaction); the newest batch id."""
        newest = 0
        for _ in range(limit):
            head = self._db.execute(
                "SELECT s.seq, s.session, s.t, s.received, x.state FROM samples s"
                " JOIN sessions x ON x.id = s.session"
                " WHERE s.batch IS NULL AND x.state != 'pending' ORDER BY s.seq LIMIT 1"
            ).fetchone()
            if head is None:
                loose &= self._waiting  # every started session's samples are sealed
                break
            first_seq, session, t_first, received, state = head
            rows = self._db.execute(
                "SELECT seq, t FROM samples WHERE session = ? AND batch IS NULL AND seq >= ?"
                " ORDER BY seq LIMIT ?",
                (session, first_seq, self.max_samples + 1),
            ).fetchall()
            chosen = [seq for seq, t in rows[: self.max_samples] if self.live or t < t_first + self.batch_s]
            complete = len(chosen) < len(rows)  # a later sample of this session lies beyond the batch
            due = self.live or complete or state == "ended" or now - received >= self.batch_s
            if not due or not chosen:
                break
            cursor = self._db.execute(
                "INSERT INTO batches (session, count) VALUES (?, ?)", (session, len(chosen))
            )
            newest = int(cursor.lastrowid or 0)
            self._db.execute(
                "UPDATE samples SET batch = ? WHERE session = ? AND batch IS NULL AND seq BETWEEN ? AND ?",
                (newest, session, chosen[0], chosen[-1]),
            )
            if not complete:
                loose.discard(int(session))  # nothing of this session is left unsealed
        return newest

    @property
    def buffered(self) -> int:
        """Samples waiting for the next commit."""
        return len(self._pending)

    def _check_size(self, now: float) -> None:
        self._checked_at, self._since_check = now, 0
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        used = (int(pages) - int(free)) * self._page_size
        assert self.max_bytes is not None
        if self.full:
            self.full = used > 0.9 * self.max_bytes  # room again once a tenth is free: no flapping
        else:
            self.full = used >= self.max_bytes

    # -- reading sessions -----------------------------------------------------------------------------

    def sessions(self, states: Sequence[str] = ("pending", "active", "ended")) -> list[SpoolSession]:
        """The sessions in these states, oldest first."""
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            "SELECT id, car_index, state, sim, track_name, track_config, track_length_m, car, created_at,"
            " started_at, last_t, last_clock, last_wall, server_id, server_name, creating, part"
            f" FROM sessions WHERE state IN ({marks}) ORDER BY id",
            tuple(states),
        ).fetchall()
        return [_session(row) for row in rows]

    def session(self, session: int) -> SpoolSession | None:
        """One session, or None once it is gone."""
        row = self._db.execute(
            "SELECT id, car_index, state, sim, track_name, track_config, track_length_m, car, created_at,"
            " started_at, last_t, last_clock, last_wall, server_id, server_name, creating, part"
            " FROM sessions WHERE id = ?",
            (session,),
        ).fetchone()
        return None if row is None else _session(row)

    # -- the sending side ------------------------------------------------------------------------------

    def next_batch(self) -> Batch | None:
        """The oldest sealed batch not acknowledged yet (sealed by `flush`), or None."""
        if self._sealed_through <= self._acked_through:
            return None
        sealed = self._db.execute(
            "SELECT id, session FROM batches WHERE id > ? ORDER BY id LIMIT 1", (self._acked_through,)
        ).fetchone()
        return None if sealed is None else self._batch(int(sealed[0]), int(sealed[1]))

    @property
    def has_work(self) -> bool:
        """A sealed batch waits to be sent, or an ended session to be ended on the server."""
        return self._sealed_through > self._acked_through or self._ended > 0

    def _batch(self, batch_id: int, session: int) -> Batch:
        rows = self._db.execute(
            "SELECT body, t FROM samples WHERE batch = ? ORDER BY seq", (batch_id,)
        ).fetchall()
        return Batch(
            batch_id,
            f"relay-{self.spool_id}-{batch_id:09d}",
            session,
            [r[0] for r in rows],
            rows[0][1] if rows else 0.0,
        )

    def ack(self, batch: Batch) -> None:
        """The server stored the batch: forget it (its rows go with the next commit, `flush`).

        Batches are acknowledged in order, so every batch up to this one is done. An acknowledgement lost
        in a crash before that commit only means the batch is sent again, under the same id, and the
        server answers "duplicate"."""
        self._acked_through = max(self._acked_through, batch.id)
        self._acked_rows += len(batch.bodies)

    def reject(self, batch: Batch, server_id: str | None, reason: str) -> None:
        """The server refused the batch as invalid: keep it aside (never lost), go on with the next."""
        self._db.execute("BEGIN")
        self._db.execute(
            "INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?, ?, ?)",
            (batch.id, batch.session, server_id, reason, b"[" + b",".join(batch.bodies) + b"]", time.time()),
        )
        self._db.execute("DELETE FROM samples WHERE batch = ?", (batch.id,))
        self._db.execute("DELETE FROM batches WHERE id = ?", (batch.id,))
        self._db.execute("COMMIT")
        self._acked_through = max(self._acked_through, batch.id)

    def creating_server_session(self, session: int, name: str) -> None:
        """Note, before asking, that a server session of this name is being created (a crash may follow)."""
        self._db.execute("UPDATE sessions SET creating = 1, server_name = ? WHERE id = ?", (name, session))

    def set_server_session(self, session: int, server_id: str) -> None:
        """The server session this one's samples go to."""
        self._db.execute("UPDATE sessions SET server_id = ?, creating = 0 WHERE id = ?", (server_id, session))

    def continue_in_new_server_session(self, session: int) -> None:
        """The server session was ended or removed meanwhile: the rest goes to a new one, part n + 1."""
        self._db.execute(
            "UPDATE sessions SET server_id = NULL, server_name = NULL, creating = 0, part = part + 1 WHERE id = ?",
            (session,),
        )

    def finished_sessions(self) -> list[SpoolSession]:
        """Ended sessions whose every sample has been acknowledged: only the server's end is left to do."""
        if not self._ended:
            return []
        return [
            s
            for s in self.sessions(("ended",))
            if self._db.execute(
                "SELECT 1 FROM samples WHERE session = ? AND (batch IS NULL OR batch > ?) LIMIT 1",
                (s.id, self._acked_through),
            ).fetchone()
            is None
        ]

    def forget_session(self, session: int) -> None:
        """Everything about the session is done."""
        self._db.execute("DELETE FROM sessions WHERE id = ?", (session,))
        self._ended = max(self._ended - 1, 0)

    def backlog(self) -> int:
        """Samples spooled and not yet acknowledged (pre-roll of sessions not started included)."""
        stored = int(self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
        return stored - self._acked_rows + len(self._pending)

    def get_meta(self, key: str) -> str | None:
        """A value kept across restarts (the driver id)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Keep a value across restarts."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def _info_row(info: SessionInfo) -> tuple[str, str | None, str | None, float | None, str | None]:
    return info.sim, info.track_name, info.track_config, info.track_length_m, info.car


def _session(row: tuple[object, ...]) -> SpoolSession:
    (
        id_,
        car_index,
        state,
        sim,
        track,
        config,
        length,
        car,
        created,
        started,
        last_t,
        last_clock,
        last_wall,
        server_id,
        server_name,
        creating,
        part,
    ) = row
    return SpoolSession(
        id=int(id_),  # type: ignore[call-overload]
        car_index=int(car_index),  # type: ignore[call-overload]
        state=str(state),
        info=SessionInfo(str(sim or ""), track, config, length, car),  # type: ignore[arg-type]
        created_at=float(created),  # type: ignore[arg-type]
        started_at=started,  # type: ignore[arg-type]
        last_t=last_t,  # type: ignore[arg-type]
        last_clock=last_clock,  # type: ignore[arg-type]
        last_wall=last_wall,  # type: ignore[arg-type]
        server_id=server_id,  # type: ignore[arg-type]
        server_name=server_name,  # type: ignore[arg-type]
        creating=bool(creating),
        part=int(part),  # type: ignore[call-overload]
    )
