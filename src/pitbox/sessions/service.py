"""Sessions: created for a driver, listed newest first, read with their stats, ended by hand or when idle.

Idle sessions are ended by `end_idle_sessions`, which the service runs every minute or so between `start()`
and `close()` when given `idle_timeout_s`. Ending is a single UPDATE, so several instances may do it side by side.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.errors import Invalid, NotFound
from pitbox.lifecycle import Lifecycle, Periodic
from pitbox.realtime.publisher import Publisher, session_channel, telemetry_channel
from pitbox.sessions import store
from pitbox.sessions.models import Session, SessionCreate, SessionCursor, SessionFilter, SessionSummary
from pitbox.telemetry import store as telemetry_store
from pitbox.telemetry.models import CompletedLap
from pitbox.tracks import service as tracks

log = structlog.get_logger(__name__)

MAX_PAGE = 200


@dataclass(frozen=True)
class SessionPage:
    """A page of a driver's sessions (as the API shows them), newest first, and where the next page starts."""

    sessions: list[Session]
    next_cursor: str | None


class SessionService(Lifecycle):
    """The rules of sessions; every method checks access through `Access` first. With `idle_timeout_s`, it
    ends idle sessions in the background (every idle_timeout_s/4 s, at most a minute) while started."""

    def __init__(
        self, pool: asyncpg.Pool, access: Access, publisher: Publisher, *, idle_timeout_s: float | None = None
    ) -> None:
        self._pool = pool
        self._access = access
        self._publisher = publisher
        self._idle_timeout_s = idle_timeout_s or 0.0
        every = min(max(self._idle_timeout_s / 4, 1.0), 60.0) if idle_timeout_s else 0.0
        self._reaper = Periodic("idle-session-reaper", every, self._end_idle_sessions)

    async def start(self) -> None:
        """Start ending idle sessions in the background (when given `idle_timeout_s`)."""
        await self._reaper.start()

    async def close(self) -> None:
        """Stop ending idle sessions."""
        await self._reaper.close()

    async def create(self, principal: Principal, body: SessionCreate) -> Session:
        """A new active session for a driver the caller may write for."""
        await self._access.require_driver(principal, body.driver_id, "write", scope="sessions:write")
        track_id = body.track_id
        if track_id is not None:
            await tracks.named_track(self._pool, track_id, body.track_length_m)
        elif body.track_name:
            # Tracks are one shared catalogue: whoever may create a session may have its track found or made;
            # the length it measured stays with the session, never written onto a track that exists.
            track = await tracks.match_or_create(
                self._pool, body.track_name, body.track_config or "", body.track_length_m, body.driver_id
            )
            track_id = track["id"]
        row = await store.insert_session(
            self._pool,
            body.driver_id,
            body.name,
            track_id,
            body.car,
            body.sim,
            body.type,
            principal.user_id,
            body.track_length_m,
        )
        session = Session.from_row(row)
        event = {"type": "session_started", "session": session.wire()}
        self._publisher.publish(session_channel(row["id"]), event)
        self._publisher.publish(telemetry_channel(row["driver_id"]), event)
        return session

    async def list_for_driver(
        self,
        principal: Principal,
        driver_id: uuid.UUID,
        where: SessionFilter,
        cursor: str | None,
        limit: int,
    ) -> SessionPage:
        """A page of the driver's sessions, newest first, with the cursor of the next page (or None)."""
        await self._access.require_driver(principal, driver_id, scope="sessions:read")
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid(
                f"limit: must be between 1 and {MAX_PAGE}",
                details=[{"field": "limit", "message": f"must be between 1 and {MAX_PAGE}"}],
            )
        after = SessionCursor.decode(cursor) if cursor else None
        rows = await store.sessions_of_driver(self._pool, driver_id, where, after, limit + 1)
        page = rows[:limit]
        next_cursor = (
            SessionCursor(page[-1]["started_at"], page[-1]["id"]).encode() if len(rows) > limit else None
        )
        return SessionPage([Session.from_row(row) for row in page], next_cursor)

    async def summary(self, principal: Principal, session_id: uuid.UUID) -> SessionSummary:
        """One session with its stats, its laps and its best lap."""
        await self._access.require_session(principal, session_id, scope="sessions:read")
        row = await store.session_by_id(self._pool, session_id)
        if row is None:
            raise NotFound("session not found")
        laps = [
            CompletedLap.from_row(lap)
            for lap in await telemetry_store.laps_of_session(self._pool, session_id)
        ]
        valid = [lap for lap in laps if lap.valid]
        best = min(valid, key=lambda lap: lap.lap_time) if valid else None
        return SessionSummary(**Session.fields_of(row), laps=laps, best_lap=best)

    async def end(self, principal: Principal, session_id: uuid.UUID) -> Session:
        """End a session now; ending an ended session changes nothing and answers the same."""
        driver_id = await self._access.require_session(principal, session_id, "write", scope="sessions:write")
        if await store.end_session(self._pool, session_id):
            self._announce_end(session_id, driver_id, reason="ended")
        row = await store.session_by_id(self._pool, session_id)
        if row is None:
            raise NotFound("session not found")
        return Session.from_row(row)

    async def end_idle_sessions(self, idle_s: float) -> int:
        """End the active sessions without telemetry for `idle_s` seconds; returns how many."""
        idle_since = datetime.now(UTC) - timedelta(seconds=idle_s)
        rows = await store.end_idle_sessions(self._pool, idle_since)
        for row in rows:
            self._announce_end(row["id"], row["driver_id"], reason="idle")
        return len(rows)

    async def _end_idle_sessions(self) -> None:
        ended = await self.end_idle_sessions(self._idle_timeout_s)
        if ended:
            log.info("idle_sessions_ended", count=ended)

    def _announce_end(self, session_id: uuid.UUID, driver_id: uuid.UUID, *, reason: str) -> None:
        event = {
            "type": "session_ended",
            "sessionId": str(session_id),
            "driverId": str(driver_id),
            "reason": reason,
        }
        self._publisher.publish(session_channel(session_id), event)
        self._publisher.publish(telemetry_channel(driver_id), event)
