"""Feedback reaches the driver: published on `ai:<driverId>`, and spoken when it has something to say (after the
audio of its in-lap cues, which the next corners need first)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import asyncpg
import structlog

from pitbox.coaching import store
from pitbox.coaching.schemas import audio_url
from pitbox.lifecycle import Lifecycle
from pitbox.realtime.publisher import Publisher, ai_channel
from pitbox.voice.clips import VoiceClips

log = structlog.get_logger(__name__)


class FeedbackPush(Lifecycle):
    """Publishes feedback and speaks it in tasks of its own, cancelled at `close()`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        voice: VoiceClips | None,
        *,
        speak_feedback: bool = True,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._voice = voice
        self._speak_feedback = speak_feedback
        self._speech: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Stop any speech in progress."""
        for task in self._speech:
            task.cancel()
        for task in [*self._speech]:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def idle(self) -> None:
        """Wait until the speech in progress is made: for tests and benchmarks."""
        while self._speech:
            await asyncio.gather(*self._speech, return_exceptions=True)

    def push(self, feedback: dict[str, Any], *, after: asyncio.Future[None] | None = None) -> None:
        """Publish a feedback on the driver's ai channel and, when it has something to say, speak it (once
        the audio of its in-lap cues, `after`, is made: those are needed before the next corners)."""
        self._publisher.publish(ai_channel(feedback["driverId"]), {"type": "coaching", "feedback": feedback})
        spoken = _spoken_text(feedback)
        if self._voice is not None and self._speak_feedback and spoken:
            task = asyncio.create_task(self._speak(feedback, spoken, after))
            self._speech.add(task)
            task.add_done_callback(self._speech.discard)

    async def _speak(self, feedback: dict[str, Any], text: str, after: asyncio.Future[None] | None) -> None:
        assert self._voice is not None
        if after is not None:
            await asyncio.wait([after])  # its outcome is the cues' own business
        try:
            result = await self._voice.speak(("driver", uuid.UUID(feedback["driverId"])), text)
        except Exception as exc:
            log.warning("coaching_speech_failed", feedback_id=feedback["id"], error=repr(exc))
            return
        feedback_id = uuid.UUID(feedback["id"])
        await store.set_feedback_audio(self._pool, feedback_id, result.key)
        self._publisher.publish(
            ai_channel(feedback["driverId"]),
            {"type": "coaching_audio", "feedbackId": feedback["id"], "audioUrl": audio_url(result.key)},
        )


def _spoken_text(feedback: dict[str, Any]) -> str | None:
    """What the driver hears: the first improvement, else nothing (strengths and summaries are for screens)."""
    for item in feedback["items"]:
        if item.get("kind") == "improvement" and item.get("text"):
            return str(item["text"])
    return None
