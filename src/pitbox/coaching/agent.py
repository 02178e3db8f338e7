"""The external AI agent (AI_AGENT_URL): one JSON POST per lap, with timeouts, retries and a circuit breaker.

The contract is in docs/ai-agent.md. The agent may first ask for telemetry channels (`needTelemetry`); they
are sent in a second POST. Any failure (refused, slow, 5xx, an answer that breaks the contract) raises
`AgentFailure` with a short reason, so the caller falls back to the built-in analyst.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog

log = structlog.get_logger(__name__)

BreakerState = Literal["closed", "open", "half_open"]
#: Telemetry callback: channel names asked for -> {"distance": [...], "lap": {...}, "reference": {...}}.
TelemetryProvider = Callable[[list[str]], dict[str, Any]]

MAX_ITEMS = 10
MAX_TEXT_CHARS = 500
MAX_SUMMARY_CHARS = 2000
MAX_CHANNELS_ASKED = 12


class AgentFailure(Exception):
    """The agent could not be used for this lap; `reason` says why (timeout, unavailable, bad_answer, …)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AgentItem:
    """One item of the agent's answer."""

    text: str
    corner: str | None
    time_lost: float | None
    confidence: float | None


@dataclass(frozen=True, slots=True)
class AgentAnswer:
    """The agent's coaching for one lap."""

    summary: str
    items: list[AgentItem]


class CircuitBreaker:
    """Opens after `failure_threshold` failures in a row; after `cooldown_s` lets one trial call through
    (half-open): its success closes the circuit, its failure opens it again."""

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        """closed (calls go through), open (calls fail fast) or half_open (one trial call may go)."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may go now; in half-open state only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        """A call worked: close the circuit."""
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        """A call failed: count it, and open (or re-open) the circuit at the threshold or after a trial."""
        self._failures += 1
        if self._trial_running or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_running = False


class AgentClient:
    """Calls the AI agent; one call per lap, retried on transport errors and 5xx, guarded by a breaker."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        timeout_s: float = 3.0,
        max_attempts: int = 2,
        backoff_s: float = 0.2,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._url = url
        self._timeout = httpx.Timeout(timeout_s)
        self._max_attempts = max(1, max_attempts)
        self._backoff_s = backoff_s
        self.breaker = breaker or CircuitBreaker()
        self._sleep = sleep

    async def coach(self, request: dict[str, Any], telemetry: TelemetryProvider) -> AgentAnswer:
        """The agent's answer to `request`, sending the telemetry channels it asks for; AgentFailure otherwise."""
        if not self.breaker.allow():
            raise AgentFailure("circuit_open")
        try:
            answer = await self._post(request)
            if "needTelemetry" in answer and "summary" not in answer:
                channels = _asked_channels(answer["needTelemetry"])
                answer = await self._post({**request, "telemetry": telemetry(channels)})
            parsed = parse_answer(answer)
        except AgentFailure as failure:
            self.breaker.record_failure()
            log.warning("ai_agent_failed", reason=failure.reason, breaker=self.breaker.state)
            raise
        self.breaker.record_success()
        return parsed

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        reason = "unavailable"
        for attempt in range(self._max_attempts):
            if attempt:
                await self._sleep(self._backoff_s * 2 ** (attempt - 1))
            try:
                response = await self._http.post(self._url, json=body, timeout=self._timeout)
            except httpx.TimeoutException:
                reason = "timeout"
                continue
            except httpx.HTTPError as exc:
                reason = f"unavailable: {type(exc).__name__}"
                continue
            if response.status_code >= 500 or response.status_code == 429:
                reason = f"http_{response.status_code}"
                continue
            if response.status_code != 200:
                raise AgentFailure(f"http_{response.status_code}")
            try:
                data = response.json()
            except ValueError:
                raise AgentFailure("bad_answer: not JSON") from None
            if not isinstance(data, dict):
                raise AgentFailure("bad_answer: not an object")
            return data
        raise AgentFailure(reason)


def _asked_channels(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise AgentFailure("bad_answer: needTelemetry must be a list of channel names")
    return [name[:64] for name in value[:MAX_CHANNELS_ASKED]]


def parse_answer(data: dict[str, Any]) -> AgentAnswer:
    """The agent's JSON answer checked against the contract; AgentFailure("bad_answer: …") when it breaks it."""
    summary = data.get("summary")
    items = data.get("items")
    if not isinstance(summary, str) or not isinstance(items, list):
        raise AgentFailure("bad_answer: summary (string) and items (list) are required")
    if len(items) > MAX_ITEMS:
        raise AgentFailure(f"bad_answer: more than {MAX_ITEMS} items")
    parsed = []
    for raw in items:
        if not isinstance(raw, dict) or not isinstance(raw.get("text"), str) or not raw["text"].strip():
            raise AgentFailure("bad_answer: every item needs a text")
        corner = raw.get("corner")
        time_lost = raw.get("timeLost")
        confidence = raw.get("confidence")
        if corner is not None and not isinstance(corner, str):
            raise AgentFailure("bad_answer: corner must be a string")
        if time_lost is not None and (isinstance(time_lost, bool) or not isinstance(time_lost, int | float)):
            raise AgentFailure("bad_answer: timeLost must be a number")
        if confidence is not None and (
            isinstance(confidence, bool)
            or not isinstance(confidence, int | float)
            or not 0 <= confidence <= 1
        ):
            raise AgentFailure("bad_answer: confidence must be a number from 0 to 1")
        parsed.append(
            AgentItem(
                text=raw["text"].strip()[:MAX_TEXT_CHARS],
                corner=corner[:100] if corner else None,
                time_lost=float(time_lost) if time_lost is not None else None,
                confidence=float(confidence) if confidence is not None else None,
            )
        )
    return AgentAnswer(summary=summary.strip()[:MAX_SUMMARY_CHARS], items=parsed)
