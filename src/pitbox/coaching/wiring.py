"""Builds coaching from its parts (and from the settings: the AI agent and GradientAI clients only when
configured). A stored feedback about the lap just driven also plans in-lap cues for the next lap
(`pitbox.cues`, before it is published), and its spoken audio waits for theirs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import httpx

from pitbox.auth.access import Access
from pitbox.coaching.agent import AgentClient
from pitbox.coaching.coach import Coach
from pitbox.coaching.feedback import FeedbackWriter
from pitbox.coaching.gradient import GradientClient
from pitbox.coaching.laps import StoredLaps
from pitbox.coaching.pit_wall import PitWall
from pitbox.coaching.references import References
from pitbox.coaching.requests import FeedbackRequests
from pitbox.coaching.sources import Phrasing
from pitbox.coaching.speech import FeedbackPush
from pitbox.coaching.worker import LiveCoaching
from pitbox.config import Settings
from pitbox.cues.service import CueService
from pitbox.realtime.publisher import Publisher
from pitbox.voice.clips import VoiceClips


@dataclass
class Coaching:
    """The parts of coaching the app uses: live after every lap, on request, the pit wall's; `speech` and `live`
    join the lifespan (speech after live, so it stops last)."""

    live: LiveCoaching
    requests: FeedbackRequests
    pit_wall: PitWall
    coach: Coach
    speech: FeedbackPush
    counters: Counter[str] = field(default_factory=Counter)
    """Events since start: queued, dropped, coached, silent, failed, agent_fallbacks, gradient_fallbacks."""


def assemble_coaching(
    pool: asyncpg.Pool,
    access: Access,
    publisher: Publisher,
    *,
    voice: VoiceClips | None = None,
    agent: AgentClient | None = None,
    gradient: GradientClient | None = None,
    queue_size: int = 64,
    workers: int = 2,
    speak_feedback: bool = True,
    observe_latency: Callable[[str, float], None] | None = None,
    cues: CueService | None = None,
) -> Coaching:
    """Coaching with these sources, voice and cues (None: not used)."""
    counters: Counter[str] = Counter()
    laps = StoredLaps(pool)
    speech = FeedbackPush(pool, publisher, voice, speak_feedback=speak_feedback)
    writer = FeedbackWriter(pool, speech, counters, cues=cues, observe_latency=observe_latency)
    references = References(pool, laps)
    coach = Coach(pool, laps, references, Phrasing(agent, gradient, counters), writer, counters)
    return Coaching(
        live=LiveCoaching(coach, speech, counters, queue_size=queue_size, workers=workers),
        requests=FeedbackRequests(pool, access, laps, references, coach, writer, counters, agent=agent),
        pit_wall=PitWall(pool, access, publisher, speech, voice=voice, cues=cues),
        coach=coach,
        speech=speech,
        counters=counters,
    )


def build_coaching(
    settings: Settings,
    pool: asyncpg.Pool,
    access: Access,
    publisher: Publisher,
    *,
    http: httpx.AsyncClient,
    voice: VoiceClips | None,
    observe_latency: Callable[[str, float], None] | None = None,
    cues: CueService | None = None,
) -> Coaching:
    """Coaching for these settings (AI_AGENT_URL, GRADIENT_AI_API_KEY and friends)."""
    agent = (
        AgentClient(http, str(settings.ai_agent_url), timeout_s=settings.ai_agent_timeout_s)
        if settings.ai_agent_url
        else None
    )
    gradient = (
        GradientClient(
            http,
            api_key=settings.gradient_ai_api_key,
            base_url=str(settings.gradient_ai_base_url),
            model=settings.gradient_ai_model,
        )
        if settings.gradient_ai_api_key
        else None
    )
    return assemble_coaching(
        pool,
        access,
        publisher,
        voice=voice,
        agent=agent,
        gradient=gradient,
        observe_latency=observe_latency,
        speak_feedback=settings.speak_coaching,
        cues=cues,
    )
