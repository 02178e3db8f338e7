"""Builds the coaching service from the settings: the AI agent and GradientAI clients only when configured."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import httpx

from pitbox.auth.access import Access
from pitbox.coaching.agent import AgentClient
from pitbox.coaching.gradient import GradientClient
from pitbox.coaching.service import CoachingService
from pitbox.config import Settings
from pitbox.cues.service import CueService
from pitbox.realtime.publisher import Publisher
from pitbox.voice.clips import VoiceClips


def build_coaching_service(
    settings: Settings,
    pool: asyncpg.Pool,
    access: Access,
    publisher: Publisher,
    *,
    http: httpx.AsyncClient,
    voice: VoiceClips | None,
    observe_latency: Callable[[str, float], None] | None = None,
    cues: CueService | None = None,
) -> CoachingService:
    """The coaching service for these settings (AI_AGENT_URL, GRADIENT_AI_API_KEY and friends)."""
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
    return CoachingService(
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
