"""Storing a feedback: one with items (its in-lap cues planned, then published, or held for approval), or one
without that says why there is none."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from pitbox.coaching import store
from pitbox.coaching.laps import LapData
from pitbox.coaching.models import Analysis
from pitbox.coaching.schemas import Feedback
from pitbox.coaching.speech import FeedbackPush
from pitbox.cues.service import CueService

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Phrased:
    """Coaching in words: who said it, the summary and the items."""

    source: str
    summary: str
    items: list[dict[str, Any]]


class FeedbackWriter:
    """Stores feedback and hands it to `FeedbackPush`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        push: FeedbackPush,
        counters: Counter[str],
        *,
        cues: CueService | None = None,
        observe_latency: Callable[[str, float], None] | None = None,
    ) -> None:
        self._pool = pool
        self._push = push
        self._counters = counters
        self._cues = cues
        self._observe_latency = observe_latency

    async def store_phrased(
        self,
        session: asyncpg.Record,
        lap_number: int | None,
        phrased: Phrased,
        started: float,
        created_by: uuid.UUID | None,
        *,
        cue_plan: tuple[Analysis, LapData, LapData] | None = None,
    ) -> dict[str, Any]:
        """Store a feedback, plan its in-lap cues (`cue_plan`: the analysis, the lap and its reference), and
        publish it (or hold it for approval)."""
        status = "pending_approval" if session["approval_required"] else "published"
        row = await store.insert_feedback(
            self._pool,
            session_id=session["id"],
            driver_id=session["driver_id"],
            lap_number=lap_number,
            kind="analysis",
            source=phrased.source,
            status=status,
            summary=phrased.summary,
            items=phrased.items,
            latency_ms=int((time.perf_counter() - started) * 1000),
            created_by=created_by,
        )
        feedback = feedback_json(row)
        self._counters["coached"] += 1
        cues_ready: asyncio.Future[None] | None = None
        if cue_plan is not None and self._cues is not None:
            try:
                cues_ready = await self._cues.plan(session, feedback, *cue_plan)
            except Exception as exc:
                log.error("cue_planning_failed", feedback_id=feedback["id"], error=repr(exc))
        if self._observe_latency is not None:
            self._observe_latency(phrased.source.split(" ")[0], time.perf_counter() - started)
        if status == "published":
            self._push.push(feedback, after=cues_ready)
        return feedback

    async def store_silent(
        self,
        session: asyncpg.Record,
        lap: LapData | None,
        reason: str,
        started: float,
        created_by: uuid.UUID | None,
        *,
        source: str = "analyst",
    ) -> dict[str, Any]:
        """Store and publish a feedback without items that says why there is none (the answer to a request:
        nothing is spoken, but a driver app listening on `ai:<driverId>` shows it)."""
        summary = f"No coaching for this lap: {reason}." if lap is not None else f"No lap to coach: {reason}."
        row = await store.insert_feedback(
            self._pool,
            session_id=session["id"],
            driver_id=session["driver_id"],
            lap_number=None if lap is None else lap.number,
            kind="analysis",
            source=source,
            status="published",
            summary=summary,
            items=[],
            latency_ms=int((time.perf_counter() - started) * 1000),
            created_by=created_by,
        )
        feedback = feedback_json(row)
        self._push.push(feedback)
        return feedback


def feedback_json(row: asyncpg.Record) -> dict[str, Any]:
    """A stored feedback as the API and the ai channel show it (`Feedback`), as a JSON object."""
    return Feedback.from_row(row).wire()
