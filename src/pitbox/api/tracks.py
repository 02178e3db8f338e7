"""/api/tracks: shared track reference data."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.errors import errors
from pitbox.telemetry.errors import BadSplits
from pitbox.tracks.errors import TrackExists
from pitbox.tracks.models import Track, TrackCreate, TrackUpdate

router = APIRouter(prefix="/api/tracks", tags=["tracks"])


@router.post("", status_code=201, summary="Create a track", responses=errors(TrackExists, BadSplits))
async def create_track(body: TrackCreate, principal: CurrentPrincipal, services: ServicesDep) -> Track:
    return await services.tracks.create(principal, body)


@router.get("", summary="Every track")
async def list_tracks(principal: CurrentPrincipal, services: ServicesDep) -> list[Track]:
    return await services.tracks.list(principal)


@router.get("/{track_id}", summary="One track")
async def get_track(track_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> Track:
    return await services.tracks.get(principal, track_id)


@router.patch(
    "/{track_id}",
    summary="Change a track (admins: the catalogue is shared by every team)",
    responses=errors(TrackExists, BadSplits),
)
async def update_track(
    track_id: uuid.UUID, body: TrackUpdate, principal: CurrentPrincipal, services: ServicesDep
) -> Track:
    return await services.tracks.update(principal, track_id, body)


@router.delete("/{track_id}", status_code=204, summary="Delete a track (admins)")
async def delete_track(track_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    await services.tracks.delete(principal, track_id)
    return Response(status_code=204)
