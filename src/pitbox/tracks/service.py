"""Tracks are one shared catalogue (a circuit is the same for every team): everyone reads them; whoever may
create sessions may add one; only admins change or delete one, since every team's sector times hang on it.

A track is one layout of a circuit: name, configuration and length. Sessions made from data name their track
(`match_or_create`): the one with the same name and configuration whose length is within `SAME_LENGTH` of the
measured one (or that has no length yet) is used, else a new track is created. Two tracks may share a name
and configuration only when their lengths say they are different circuits.
"""

from __future__ import annotations

import uuid

import asyncpg

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.db.types import Queryable
from pitbox.errors import Conflict, NotFound
from pitbox.tracks import store
from pitbox.tracks.models import Track, TrackCreate, TrackUpdate

#: Two lengths within this fraction of each other are one circuit; beyond it, two.
SAME_LENGTH = 0.01


def same_length(a: float | None, b: float | None) -> bool:
    """Whether two track lengths (metres) can be one circuit: within 1 %, or either unknown."""
    if a is None or b is None:
        return True
    return abs(a - b) <= SAME_LENGTH * max(a, b)


async def match_or_create(
    pool: asyncpg.Pool, name: str, configuration: str, length_m: float | None
) -> asyncpg.Record:
    """The track of this name and configuration whose length matches `length_m` (or is unknown: it is then
    kept), created when there is none. Concurrent callers naming one track get one track."""
    async with pool.acquire() as conn, conn.transaction():
        await store.lock_track_name(conn, name, configuration)
        candidates = await store.tracks_named(conn, name, configuration)
        known = [row for row in candidates if row["length_m"] is not None]
        if length_m is not None:
            for row in known:
                if same_length(row["length_m"], length_m):
                    return row
        else:
            if known:
                return known[0]
        unknown = [row for row in candidates if row["length_m"] is None]
        if unknown:
            row = unknown[0]
            if length_m is not None:
                await store.set_track_length_if_unknown(conn, row["id"], length_m)
                updated = await store.track_by_id(conn, row["id"])
                assert updated is not None
                return updated
            return row
        return await store.insert_track(conn, name, None, length_m, [], None, configuration)


class TrackService:
    """Track reference data."""

    def __init__(self, pool: asyncpg.Pool, access: Access) -> None:
        self._pool = pool
        self._access = access

    async def create(self, principal: Principal, body: TrackCreate) -> Track:
        """A new track (users, and API keys that may create sessions); 409 when one of this name and
        configuration with the same length exists."""
        self._access.require_scope(principal, "sessions:write")
        async with self._pool.acquire() as conn, conn.transaction():
            await store.lock_track_name(conn, body.name, body.configuration)
            await _refuse_clash(conn, body.name, body.configuration, body.length_m)
            row = await store.insert_track(
                conn,
                body.name,
                body.country,
                body.length_m,
                body.sector_splits,
                body.corners,
                body.configuration,
            )
        return Track.from_row(row)

    async def list(self, principal: Principal) -> list[Track]:
        """Every track."""
        return [Track.from_row(r) for r in await store.all_tracks(self._pool)]

    async def get(self, principal: Principal, track_id: uuid.UUID) -> Track:
        """One track."""
        row = await store.track_by_id(self._pool, track_id)
        if row is None:
            raise NotFound("track not found")
        return Track.from_row(row)

    async def update(self, principal: Principal, track_id: uuid.UUID, body: TrackUpdate) -> Track:
        """Change a track (admins only: every team's sessions on it would change); 409 when it would become
        another track's twin."""
        self._access.require_user(principal, "admin")
        fields = body.model_dump(exclude_unset=True)
        for required in ("name", "configuration"):  # null means "leave as is": the columns hold no null
            if fields.get(required, "") is None:
                del fields[required]
        async with self._pool.acquire() as conn, conn.transaction():
            current = await store.track_by_id(conn, track_id)
            if current is None:
                raise NotFound("track not found")
            name = fields.get("name", current["name"])
            configuration = fields.get("configuration", current["configuration"])
            length = fields["length_m"] if "length_m" in fields else current["length_m"]
            await store.lock_track_name(conn, name, configuration)
            await _refuse_clash(conn, name, configuration, length, exclude=track_id)
            row = await store.update_track(conn, track_id, fields)
        if row is None:
            raise NotFound("track not found")
        return Track.from_row(row)

    async def delete(self, principal: Principal, track_id: uuid.UUID) -> None:
        """Delete a track (admins only)."""
        self._access.require_user(principal, "admin")
        if not await store.delete_track(self._pool, track_id):
            raise NotFound("track not found")


async def _refuse_clash(
    conn: Queryable, name: str, configuration: str, length_m: float | None, exclude: uuid.UUID | None = None
) -> None:
    for row in await store.tracks_named(conn, name, configuration, exclude):
        if same_length(row["length_m"], length_m):
            raise Conflict("a track with this name, configuration and length exists", code="track_exists")
