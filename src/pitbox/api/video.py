"""POST /api/video (base64 JSON or raw image bytes), GET /api/video/{frameId}, and a session's frames:
GET /api/sessions/{sessionId}/video and GET /api/sessions/{sessionId}/video/nearest."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.errors import errors
from pitbox.api.voice import principal_from_header_or_query
from pitbox.auth.principal import Principal
from pitbox.errors import AbsurdTime, BadCursor, FrameTooLarge, InvalidJson, UnsupportedMedia
from pitbox.telemetry.errors import LapTooShort, MissingChannels
from pitbox.telemetry.models import MAX_T
from pitbox.video.errors import (
    EmptyFrame,
    FrameChangedRetry,
    ImageTooLarge,
    InvalidBase64,
    InvalidImage,
    InvalidQuery,
    NoFrames,
    UnsupportedImage,
)
from pitbox.video.images import CONTENT_TYPES
from pitbox.video.models import FrameMeta, FramePage, NearestFrame, UploadedFrame

router = APIRouter(tags=["video"])

#: A frame's bytes never change under its id, so a browser may keep it for good.
FRAME_CACHE_CONTROL = "private, max-age=31536000, immutable"
BINARY_MEDIA_TYPES = (*CONTENT_TYPES, "application/octet-stream")
_FRAME_JSON = {
    "type": "object",
    "required": ["driverId", "sessionId", "frameData", "timestamp"],
    "properties": {
        "driverId": {"type": "string", "format": "uuid"},
        "sessionId": {"type": "string", "format": "uuid"},
        "frameData": {
            "type": "string",
            "minLength": 1,
            "description": "The JPEG, PNG or WebP image, base64 (a data: URL is ok).",
        },
        "timestamp": {"type": "string", "format": "date-time", "example": "2023-07-17T12:34:56Z"},
    },
}
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _FRAME_JSON},
            **{media: {"schema": {"type": "string", "format": "binary"}} for media in BINARY_MEDIA_TYPES},
        },
    }
}


@router.post(
    "/api/video",
    status_code=201,
    summary="Upload a video frame (201 stored, 200 when the session already holds the identical frame)",
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"description": "The identical frame was stored before", "model": UploadedFrame},
        **errors(
            InvalidJson,
            InvalidBase64,
            FrameTooLarge,
            EmptyFrame,
            ImageTooLarge,
            InvalidImage,
            UnsupportedImage,
            AbsurdTime,
            FrameChangedRetry,
        ),
    },
)
async def upload_frame(
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    services: ServicesDep,
    driver_id: Annotated[str | None, Query(alias="driverId", description="Binary form only")] = None,
    session_id: Annotated[str | None, Query(alias="sessionId", description="Binary form only")] = None,
    timestamp: Annotated[str | None, Query(description="Binary form only (ISO-8601)")] = None,
    x_driver_id: Annotated[str | None, Header()] = None,
    x_session_id: Annotated[str | None, Header()] = None,
    x_frame_timestamp: Annotated[str | None, Header()] = None,
) -> UploadedFrame:
    """JSON `{driverId, sessionId, frameData, timestamp}`, or the image bytes as the body with the fields as
    query parameters (or X-Driver-Id, X-Session-Id, X-Frame-Timestamp headers). The bytes decide the type."""
    media = request.headers.get("content-type", "application/json").partition(";")[0].strip().lower()
    if media == "application/json":
        accepted = await services.video.ingest_json(principal, request.stream())
    elif media in BINARY_MEDIA_TYPES:
        meta = FrameMeta.from_fields(
            driver_id or x_driver_id, session_id or x_session_id, timestamp or x_frame_timestamp
        )
        accepted = await services.video.ingest_binary(principal, meta, request.stream())
    else:
        raise UnsupportedMedia(
            f"send application/json or the image bytes ({', '.join(BINARY_MEDIA_TYPES)}), not {media[:100]!r}",
            details={"accepted": ["application/json", *BINARY_MEDIA_TYPES]},
        )
    if accepted.duplicate:
        response.status_code = 200
    return accepted.answer()


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names this (strong) ETag, weakly compared, or `*`."""
    if not if_none_match:
        return False
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in if_none_match.split(","))


@router.get(
    "/api/video/{frame_id}",
    summary="A frame's image (ETag is its sha256; 304 on If-None-Match)",
    response_class=Response,
    responses={
        200: {
            "description": "The image",
            "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in CONTENT_TYPES},
        },
        304: {"description": "Not modified"},
    },
)
async def frame_image(
    frame_id: uuid.UUID,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(principal_from_header_or_query)],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The image bytes with their content type; `?token=` works for an <img src>."""
    frame = await services.video.frame(principal, frame_id)
    headers = {"ETag": f'"{frame.sha256}"', "Cache-Control": FRAME_CACHE_CONTROL}
    if etag_matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(await services.video.image_of(frame), media_type=frame.content_type, headers=headers)


@router.get(
    "/api/sessions/{session_id}/video",
    summary="A session's frames in time order, paged",
    responses=errors(BadCursor, InvalidQuery),
)
async def list_frames(
    session_id: uuid.UUID,
    principal: CurrentPrincipal,
    services: ServicesDep,
    ts_from: Annotated[datetime | None, Query(alias="from", description="ISO-8601, inclusive")] = None,
    ts_to: Annotated[datetime | None, Query(alias="to", description="ISO-8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="`nextCursor` of the previous page")] = None,
) -> FramePage:
    return await services.video.list_frames(principal, session_id, ts_from, ts_to, cursor, limit)


@router.get(
    "/api/sessions/{session_id}/video/nearest",
    summary="The frame nearest a moment of the session",
    responses=errors(InvalidQuery, NoFrames, MissingChannels, LapTooShort),
)
async def nearest_frame(
    session_id: uuid.UUID,
    principal: CurrentPrincipal,
    services: ServicesDep,
    t: Annotated[datetime | None, Query(description="A wall-clock time, ISO-8601")] = None,
    session_time: Annotated[
        float | None,
        Query(
            alias="sessionTime",
            ge=0,
            le=MAX_T,
            description="Telemetry `t`: seconds since the session started",
        ),
    ] = None,
    lap: Annotated[
        int | None, Query(ge=0, le=100_000, description="With lapDistPct: a point of a lap")
    ] = None,
    lap_dist_pct: Annotated[
        float | None, Query(alias="lapDistPct", ge=0, le=1, description="Fraction of the lap (0..1)")
    ] = None,
) -> NearestFrame:
    """Give `t`, `sessionTime`, or `lap` with `lapDistPct` (what the driver saw at the braking point);
    the answer carries `offsetMs`, the frame's distance from the asked moment."""
    if (lap is None) != (lap_dist_pct is None):
        raise InvalidQuery("give lap and lapDistPct together")
    if lap is not None and lap_dist_pct is not None:
        session_time = await services.lap_reads.time_at_lap_distance(principal, session_id, lap, lap_dist_pct)
    return await services.video.nearest_frame(principal, session_id, t, session_time)
