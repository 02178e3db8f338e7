"""Coaching routes: POST /api/ai/feedback, a session's feedback, approval, the pit wall, the approval gate."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from pitbox.api.deps import CurrentPrincipal, ServicesDep
from pitbox.api.errors import errors
from pitbox.coaching.errors import CoachingUnavailable, InvalidLap, LapNotFound, MissingField, NotPending
from pitbox.coaching.schemas import (
    Feedback,
    FeedbackRequest,
    PitWallMessage,
    SessionCoaching,
    SessionCoachingState,
)
from pitbox.coaching.wiring import Coaching
from pitbox.cues.errors import CuesUnavailable
from pitbox.telemetry.errors import LapTooShort, MissingChannels, RaggedChunk, TooManySamples
from pitbox.tracks.errors import ReferenceOtherTrack
from pitbox.voice.errors import SPEECH_ERRORS

router = APIRouter(tags=["coaching"])


def _coaching(services: ServicesDep) -> Coaching:
    coaching: Coaching | None = getattr(services, "coaching", None)
    if coaching is None:
        raise CoachingUnavailable("coaching is not running")
    return coaching


@router.post(
    "/api/ai/feedback",
    summary="Coaching for a lap",
    status_code=201,
    response_model=Feedback,
    responses=errors(
        CoachingUnavailable,
        InvalidLap,
        LapNotFound,
        MissingField,
        LapTooShort,
        MissingChannels,
        RaggedChunk,
        TooManySamples,
        ReferenceOtherTrack,
    ),
)
async def request_feedback(
    body: FeedbackRequest, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """Analyse a lap against a reference and answer the stored feedback (also pushed on `ai:<driverId>`)."""
    return await _coaching(services).requests.request_feedback(
        principal, body.driver_id, body.session_id, body.telemetry_data
    )


@router.get(
    "/api/sessions/{session_id}/feedback",
    summary="A session's coaching feedback",
    response_model=list[Feedback],
    responses=errors(CoachingUnavailable),
)
async def session_feedback(
    session_id: uuid.UUID,
    principal: CurrentPrincipal,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """Every feedback of the session, oldest first, pending ones included with their status."""
    return await _coaching(services).pit_wall.session_feedback(principal, session_id, limit)


@router.post(
    "/api/feedback/{feedback_id}/approve",
    summary="Release a pending feedback to the driver",
    response_model=Feedback,
    responses=errors(CoachingUnavailable, NotPending),
)
async def approve_feedback(
    feedback_id: uuid.UUID, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """Publish a feedback that waited for approval; 409 when it is not pending."""
    return await _coaching(services).pit_wall.approve(principal, feedback_id)


@router.post(
    "/api/sessions/{session_id}/pit-wall",
    summary="Talk to the driver",
    status_code=201,
    response_model=Feedback,
    responses=errors(CoachingUnavailable, *SPEECH_ERRORS),
)
async def pit_wall(
    session_id: uuid.UUID, body: PitWallMessage, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """Speak `text` to the session's driver and publish it on `ai:<driverId>` (engineers and managers)."""
    return await _coaching(services).pit_wall.pit_wall(principal, session_id, body.text)


@router.put(
    "/api/sessions/{session_id}/coaching",
    summary="Set the session's approval gate and cue switch",
    responses=errors(CoachingUnavailable, CuesUnavailable),
)
async def session_coaching(
    session_id: uuid.UUID, body: SessionCoaching, principal: CurrentPrincipal, services: ServicesDep
) -> SessionCoachingState:
    """With `approvalRequired`, AI feedback (and its in-lap cues) is stored as pending until approved; with
    `cuesMuted`, no in-lap cue is said. Answers both switches as they now are."""
    return await _coaching(services).pit_wall.set_session_coaching(
        principal, session_id, approval_required=body.approval_required, cues_muted=body.cues_muted
    )
