"""Who phrases the coaching: the AI agent (AI_AGENT_URL), else GradientAI (GRADIENT_AI_API_KEY), else the built-in
analyst. The analyst always runs first (its numbers ground the others) and its text stands whenever a remote
source fails; `source` then says so, e.g. "analyst (agent failed: timeout)"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import asyncpg
import numpy as np

from pitbox.coaching.agent import AgentClient, AgentFailure
from pitbox.coaching.feedback import Phrased
from pitbox.coaching.gradient import GradientClient, GradientFailure
from pitbox.coaching.laps import LapData
from pitbox.coaching.models import Analysis
from pitbox.telemetry.compare import compare_laps

AGENT_TELEMETRY_STEP_M = 10.0


class Phrasing:
    """Asks the configured remote sources for the words, in order, and falls back to the analyst's."""

    def __init__(
        self, agent: AgentClient | None, gradient: GradientClient | None, counters: Counter[str]
    ) -> None:
        self._agent = agent
        self._gradient = gradient
        self._counters = counters

    async def phrase(
        self,
        session: asyncpg.Record,
        analysis: Analysis,
        lap: LapData,
        reference: LapData,
        telemetry_data: Mapping[str, Any] | None = None,
    ) -> Phrased:
        """The agent's words, else GradientAI's, else the analyst's; `source` names who spoke and who failed."""
        builtin = [item.to_json() for item in analysis.items]
        if analysis.silent_reason is not None or (self._agent is None and self._gradient is None):
            return Phrased("analyst", analysis.summary, builtin)
        failures: list[str] = []
        if self._agent is not None:
            request = {
                "version": 1,
                "driverId": str(session["driver_id"]),
                "sessionId": str(session["id"]),
                "lap": lap.number,
                "analysis": analysis.to_json(),
                "availableChannels": sorted(set(lap.columns) & set(reference.columns)),
            }
            if telemetry_data is not None:  # the request's telemetry object, passed on as the original engine
                request["telemetryData"] = dict(telemetry_data)
            try:
                answer = await self._agent.coach(
                    request, lambda channels: agent_telemetry(lap, reference, channels, analysis.track_length)
                )
            except AgentFailure as failure:
                self._counters["agent_fallbacks"] += 1
                failures.append(f"agent failed: {failure.reason}")
            else:
                by_corner = {item.corner: item for item in analysis.items}
                items = []
                for agent_item in answer.items:
                    known = by_corner.get(agent_item.corner or "")
                    time_lost = (
                        agent_item.time_lost
                        if agent_item.time_lost is not None
                        else (known.time_lost if known else 0.0)
                    )
                    confidence = (
                        agent_item.confidence
                        if agent_item.confidence is not None
                        else (known.confidence if known else 0.5)
                    )
                    # The analyst's structured data for the same corner (range, cause) stays with the words.
                    items.append(
                        {
                            **(known.to_json() if known else {}),
                            "kind": "strength" if time_lost < 0 else "improvement",
                            "corner": agent_item.corner,
                            "text": agent_item.text,
                            "timeLost": round(time_lost, 3),
                            "confidence": round(confidence, 2),
                            "evidence": known.evidence if known else {"source": "agent"},
                        }
                    )
                return Phrased("agent", answer.summary or analysis.summary, items)
        if self._gradient is not None and analysis.items:
            try:
                summary, texts = await self._gradient.rephrase(analysis)
            except GradientFailure as failure:
                self._counters["gradient_fallbacks"] += 1
                failures.append(f"gradient failed: {failure.reason}")
            else:
                items = [{**item, "text": text} for item, text in zip(builtin, texts, strict=True)]
                return Phrased(_source("gradient", failures), summary or analysis.summary, items)
        return Phrased(_source("analyst", failures), analysis.summary, builtin)


def agent_telemetry(
    lap: LapData, reference: LapData, channels: list[str], track_length: float | None
) -> dict[str, Any]:
    """The channels an agent asked for, both laps on one distance grid (every 10 m), with the running delta."""
    wanted = [name for name in channels if name in lap.columns and name in reference.columns and name != "t"]
    step = AGENT_TELEMETRY_STEP_M if track_length and track_length > 1.0 else None
    comparison = compare_laps(
        reference.columns, lap.columns, channels=wanted, step=step, track_length=track_length
    )

    def listed(values: np.ndarray[Any, Any]) -> list[float | None]:
        return [None if not np.isfinite(value) else round(float(value), 4) for value in values]

    return {
        "distance": listed(comparison.distance),
        "delta": listed(comparison.delta),
        "lap": {name: listed(values) for name, values in comparison.b.items()},
        "reference": {name: listed(values) for name, values in comparison.a.items()},
    }


def _source(speaker: str, failures: list[str]) -> str:
    return speaker if not failures else f"{speaker} ({'; '.join(failures)})"
