"""Tracks are one shared catalogue (a circuit is the same for every team): everyone reads them; whoever may
create sessions may add one; only admins change or delete one, since every team's sector times hang on it.

A track is one layout of a circuit: name, configuration and length. Sessions made from data name their track
(`match_or_create`): the one with the same name and configuration whose length is within `SAME_LENGTH` of the
measured one (or that has no length) is used, else a new track is created. Two tracks may share a name and
configuration only when their lengths say they are different circuits.

Matching never changes a track that exists: what a session's data measured (its lap length, the corners
coaching finds) stays with the session, so one team's sessions cannot change what another team's show. Where a
track's length and a lap's own disagree, the lap is not held to the track (`agreed_length`), and a lap is
compared only with a reference driven on the same track (`refuse_other_track`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.db.types import Queryable
from pitbox.errors import NotFound
from pitbox.tracks import store
from pitbox.tracks.errors import ReferenceOtherTrack, TrackExists, TrackLengthMismatch, UnknownTrack
from pitbox.tracks.models import Track, TrackCreate, TrackUpdate

#: Two lengths within this fraction of each other are one circuit; beyond it, two.
SAME_LENGTH = 0.01


def same_length(a: float | None, b: float | None) -> bool:
    """Whether two track lengths (metres) can be one circuit: within 1 %, or either unknown."""
    if a is None or b is None:
        return True
    return abs(a - b) <= SAME_LENGTH * max(a, b)


def agreed_length(lap_length: float | None, *lengths: float | None) -> float | None:
    """The first known of `lengths` (the catalogue track's, then what the session measured) that can be the
    length of a lap that measured `lap_length`; None when none can: the lap is then not held to them."""
    for length in lengths:
        if length is not None and same_length(length, lap_length):
            return length
    return None


@dataclass(frozen=True, slots=True)
class DrivenOn:
    """Where a lap was driven, as far as we know: its session's catalogue track (None when the session names
    none, or the lap was sent inline) and the lap's length as its own data measured it."""

    track_id: uuid.UUID | None
    track_name: str | None
    lap_length_m: float | None


def refuse_other_track(lap: DrivenOn, reference: DrivenOn, *, field: str) -> None:
    """Invalid (422 `reference_other_track`, naming `field`) when the reference lap was driven elsewhere: both
    sessions name a track and they differ, or the two laps' measured lengths are more than 1 % apart."""
    if lap.track_id is not None and reference.track_id is not None and lap.track_id != reference.track_id:
        problem = f"its session is at {reference.track_name}, this one at {lap.track_name}"
    elif not same_length(reference.lap_length_m, lap.lap_length_m):
        assert reference.lap_length_m is not None and lap.lap_length_m is not None
        problem = f"it is {reference.lap_length_m:.0f} m long, this lap {lap.lap_length_m:.0f} m"
    else:
        return
    raise ReferenceOtherTrack(
        f"the reference lap was driven on another track: {problem}",
        details=[{"field": field, "message": "another track"}],
    )


async def named_track(pool: asyncpg.Pool, track_id: uuid.UUID, length_m: float | None) -> asyncpg.Record:
    """The track a new session names by id; Invalid when there is none (`unknown_track`) or when the length the
    session measured says it is another circuit (`track_length_mismatch`)."""
    row = await store.track_by_id(pool, track_id)
    if row is None:
        raise UnknownTrack(
            "trackId: no such track",
            details=[{"field": "trackId", "message": "no such track"}],
        )
    if not same_length(row["length_m"], length_m):
        raise TrackLengthMismatch(
            f"trackLengthM: {length_m:.0f} m is not the length of this track ({row['length_m']:.0f} m)",
            details=[{"field": "trackLengthM", "message": "is not the length of this track"}],
        )
    return row


async def match_or_create(
    pool: asyncpg.Pool, name: str, configuration: str, length_m: float | None, driver_id: uuid.UUID
) -> asyncpg.Record:
    """The track of this name and configuration for a new session of `driver_id`, created when there is none.
    Never changes a track: a length measured from the data stays with the session. Concurrent callers naming
    one new track get one track.

    With a length: the track whose length agrees (the closest), else the one with no length, else a new one.
    With none: the only track of that name; of several (other lengths), the one this driver last drove, else
    the oldest — never one another team made later to catch this driver's sessions."""
    async with pool.acquire() as conn, conn.transaction():
        await store.lock_track_name(conn, name, configuration)
        candidates = await store.tracks_named(conn, name, configuration)
        if length_m is not None:
            agreeing = [
                row
                for row in candidates
                if row["length_m"] is not None and same_length(row["length_m"], length_m)
            ]
            if agreeing:
                return min(agreeing, key=lambda row: abs(row["length_m"] - length_m))
            unknown = [row for row in candidates if row["length_m"] is None]
            if unknown:
                return unknown[0]
        elif len(candidates) == 1:
            return candidates[0]
        elif candidates:
            last = await store.last_driven_track(conn, driver_id, [row["id"] for row in candidates])
            return next((row for row in candidates if row["id"] == last), candidates[0])
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
            raise TrackExists("a track with this name, configuration and length exists")
