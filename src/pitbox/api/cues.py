"""In-lap cues: GET /api/sessions/{sessionId}/cues (docs/cues.md)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.errors import errors
from pitbox.cues.errors import CuesUnavailable
from pitbox.cues.models import Cue
from pitbox.cues.service import CueService

router = APIRouter(tags=["coaching"])


def _cues(services: ServicesDep) -> CueService:
    cues: CueService | None = getattr(services, "cues", None)
    if cues is None:
        raise CuesUnavailable("in-lap cues are not running")
    return cues


@router.get(
    "/api/sessions/{session_id}/cues",
    summary="A session's in-lap cues, with their efficacy",
    responses=errors(CuesUnavailable),
)
async def session_cues(
    session_id: uuid.UUID,
    principal: CurrentPrincipal,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[Cue]:
    """Every cue planned for the session, oldest first: where it was to be said, what became of it (`state`,
    `reason`, where and when it fired) and, after the lap it fired on, whether the corner changed
    (`efficacy`). Readers of the session's driver, keys with `ai:read`."""
    return await _cues(services).session_cues(principal, session_id, limit)
