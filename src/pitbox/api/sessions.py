"""/api/sessions: create a session, list a driver's sessions, read one with its stats, end it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.errors import errors
from pitbox.errors import BadCursor
from pitbox.sessions.models import Session, SessionCreate, SessionFilter, SessionSummary
from pitbox.tracks.errors import TrackLengthMismatch, UnknownTrack

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


@router.post(
    "",
    status_code=201,
    summary="Create a session for a driver",
    responses=errors(UnknownTrack, TrackLengthMismatch),
)
async def create_session(body: SessionCreate, principal: CurrentPrincipal, services: ServicesDep) -> Session:
    return await services.sessions.create(principal, body)


NEXT_PAGE_HEADER = {
    "Link": {
        "description": 'The next page, when there is one (RFC 8288): `<URL>; rel="next"`, the same query with '
        "the next `cursor`.",
        "schema": {"type": "string"},
    }
}


@router.get(
    "/{driver_id}",
    summary="A driver's sessions, newest first, paged and filtered",
    description="A JSON array of sessions, newest first. When there are more, the `Link` header holds the URL "
    'of the next page (`rel="next"`), every filter kept: follow it until there is none.',
    responses={200: {"headers": NEXT_PAGE_HEADER}, **errors(BadCursor)},
)
async def list_sessions(
    driver_id: uuid.UUID,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(description="Where a page starts: from the `Link` header")] = None,
    track: Annotated[str | None, Query(description="Track id or name")] = None,
    car: str | None = None,
    started_from: Annotated[datetime | None, Query(alias="from")] = None,
    started_to: Annotated[datetime | None, Query(alias="to")] = None,
    best_lap_below: Annotated[float | None, Query(alias="bestLapBelow", gt=0, le=86_400)] = None,
    status: Literal["active", "ended"] | None = None,
) -> list[Session]:
    where = SessionFilter(track, car, started_from, started_to, best_lap_below, status)
    page = await services.sessions.list_for_driver(principal, driver_id, where, cursor, limit)
    if page.next_cursor is not None:
        response.headers["Link"] = (
            f'<{request.url.include_query_params(cursor=page.next_cursor)}>; rel="next"'
        )
    return page.sessions


@router.get("/{session_id}/summary", summary="One session with its stats and laps")
async def session_summary(
    session_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep
) -> SessionSummary:
    return await services.sessions.summary(principal, session_id)


@router.post("/{session_id}/end", summary="End a session (idempotent)")
async def end_session(session_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep) -> Session:
    return await services.sessions.end(principal, session_id)
