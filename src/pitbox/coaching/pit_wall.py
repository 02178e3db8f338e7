"""What the pit wall does with coaching: reads a session's feedback, approves what a session holds for approval,
switches approval and in-lap cues, and sends its own spoken messages. A session with `approval_required` keeps
AI feedback as `pending_approval` until an engineer approves it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.coaching import store
from pitbox.coaching.errors import NotPending
from pitbox.coaching.feedback import feedback_json
from pitbox.coaching.schemas import SessionCoachingState
from pitbox.coaching.speech import FeedbackPush
from pitbox.cues.errors import CuesUnavailable
from pitbox.cues.service import CueService
from pitbox.errors import Invalid, NotFound
from pitbox.realtime.publisher import Publisher, ai_channel
from pitbox.voice.clips import VoiceClips

MAX_PIT_WALL_CHARS = 500


class PitWall:
    """The team's side of coaching; every action checks the caller is staff of a team holding the driver."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        access: Access,
        publisher: Publisher,
        push: FeedbackPush,
        *,
        voice: VoiceClips | None = None,
        cues: CueService | None = None,
    ) -> None:
        self._pool = pool
        self._access = access
        self._publisher = publisher
        self._push = push
        self._voice = voice
        self._cues = cues

    async def session_feedback(
        self, principal: Principal, session_id: uuid.UUID, limit: int = 200
    ) -> list[dict[str, Any]]:
        """A session's feedback, oldest first (pending ones included, with their status)."""
        await self._access.require_session(principal, session_id, scope="ai:read")
        return [feedback_json(row) for row in await store.feedback_of_session(self._pool, session_id, limit)]

    async def approve(self, principal: Principal, feedback_id: uuid.UUID) -> dict[str, Any]:
        """A manager or engineer of a team that holds the driver releases a pending feedback: it is published now."""
        row = await store.feedback_by_id(self._pool, feedback_id)
        if row is None:
            raise NotFound("feedback not found")
        try:
            driver_id = await self._access.require_session(
                principal, row["session_id"], "write", scope="ai:write"
            )
        except NotFound:
            raise NotFound("feedback not found") from None
        await self._access.require_driver_staff(principal, driver_id)
        updated = await store.set_feedback_status(self._pool, feedback_id, "published", "pending_approval")
        if updated is None:
            raise NotPending(f"feedback is {row['status']}, not pending approval")
        feedback = feedback_json(updated)
        self._push.push(feedback)
        if self._cues is not None:
            await self._cues.release(feedback)
        return feedback

    async def set_session_coaching(
        self,
        principal: Principal,
        session_id: uuid.UUID,
        approval_required: bool | None = None,
        cues_muted: bool | None = None,
    ) -> SessionCoachingState:
        """Switch a session's approval gate and mute its in-lap cues, each when given (its team's managers
        and engineers); answers both switches as they now are."""
        driver_id = await self._access.require_session(principal, session_id, "write", scope="ai:write")
        await self._access.require_driver_staff(principal, driver_id)
        if approval_required is not None:
            await store.set_session_approval(self._pool, session_id, approval_required)
        if cues_muted is not None:
            if self._cues is None:
                raise CuesUnavailable("in-lap cues are not running")
            await self._cues.set_muted(session_id, cues_muted)
        session = await store.coaching_session(self._pool, session_id)
        if session is None:
            raise NotFound("session not found")
        return SessionCoachingState(
            session_id=session_id,
            approval_required=session["approval_required"],
            cues_muted=session["cues_muted"],
        )

    async def pit_wall(self, principal: Principal, session_id: uuid.UUID, text: str) -> dict[str, Any]:
        """A message from the pit wall: spoken to the driver, stored, and published on `ai:<driverId>`."""
        started = time.perf_counter()
        driver_id = await self._access.require_session(principal, session_id, "write", scope="ai:write")
        await self._access.require_driver_staff(principal, driver_id)
        message = " ".join(text.split())
        if not message or len(message) > MAX_PIT_WALL_CHARS:
            raise Invalid(f"text must be 1 to {MAX_PIT_WALL_CHARS} characters", details=[{"field": "text"}])
        audio_key = None
        if self._voice is not None:
            audio_key = (
                await self._voice.speak(("driver", driver_id), message, user_key=principal.rate_key)
            ).key
        row = await store.insert_feedback(
            self._pool,
            session_id=session_id,
            driver_id=driver_id,
            lap_number=None,
            kind="pit_wall",
            source="pit_wall",
            status="published",
            summary=message,
            items=[],
            latency_ms=int((time.perf_counter() - started) * 1000),
            created_by=principal.user_id,
            audio_key=audio_key,
        )
        feedback = feedback_json(row)
        self._publisher.publish(ai_channel(driver_id), {"type": "pit_wall", "feedback": feedback})
        return feedback
