"""Tracks are one shared catalogue (a circuit is the same for every team): everyone reads them; whoever may
create sessions may add one; only admins change or delete one, since every team's sector times hang on it."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.errors import Conflict, NotFound
from pitbox.tracks import store
from pitbox.tracks.models import TrackCreate, TrackUpdate


def track_json(row: asyncpg.Record) -> dict[str, Any]:
    """A track as the API shows it."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "country": row["country"],
        "lengthM": row["length_m"],
        "sectorSplits": list(row["sector_splits"]),
        "corners": row["corners"],
        "createdAt": row["created_at"].isoformat(),
    }


class TrackService:
    """Track reference data."""

    def __init__(self, pool: asyncpg.Pool, access: Access) -> None:
        self._pool = pool
        self._access = access

    async def create(self, principal: Principal, body: TrackCreate) -> dict[str, Any]:
        """A new track (users, and API keys that may create sessions)."""
        self._access.require_scope(principal, "sessions:write")
        try:
            row = await store.insert_track(
                self._pool, body.name, body.country, body.length_m, body.sector_splits, body.corners
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("a track with this name exists", code="track_exists") from None
        return track_json(row)

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        """Every track."""
        return [track_json(r) for r in await store.all_tracks(self._pool)]

    async def get(self, principal: Principal, track_id: uuid.UUID) -> dict[str, Any]:
        """One track."""
        row = await store.track_by_id(self._pool, track_id)
        if row is None:
            raise NotFound("track not found")
        return track_json(row)

    async def update(self, principal: Principal, track_id: uuid.UUID, body: TrackUpdate) -> dict[str, Any]:
        """Change a track (admins only: every team's sessions on it would change)."""
        self._access.require_user(principal, "admin")
        fields = body.model_dump(exclude_unset=True)
        try:
            row = await store.update_track(self._pool, track_id, fields)
        except asyncpg.UniqueViolationError:
            raise Conflict("a track with this name exists", code="track_exists") from None
        if row is None:
            raise NotFound("track not found")
        return track_json(row)

    async def delete(self, principal: Principal, track_id: uuid.UUID) -> None:
        """Delete a track (admins only)."""
        self._access.require_user(principal, "admin")
        if not await store.delete_track(self._pool, track_id):
            raise NotFound("track not found")
