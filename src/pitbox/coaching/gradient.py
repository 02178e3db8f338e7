"""GradientAI (OpenAI-compatible chat completions): rephrase the analyst's coaching, keeping its numbers.

The model gets the measured numbers and the built-in texts and must answer JSON with one text per item. An
answer is used only when every item still names its corner and its time (so the wording may change, the facts
may not); otherwise `GradientFailure` is raised and the built-in text stands.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from pitbox.coaching.models import Analysis

SYSTEM_PROMPT = (
    "You are a race engineer talking to a driver over the radio. Rephrase the coaching items you are given "
    "so they are short, direct and encouraging. Use only the numbers given; never invent a number, a corner "
    "or a cause. Keep each item's corner name and its time in seconds exactly as written. Answer with JSON "
    'only: {"summary": "...", "items": ["...", ...]} with one item per input item, in the same order.'
)
MAX_TEXT_CHARS = 500


class GradientFailure(Exception):
    """GradientAI could not be used for this lap; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GradientClient:
    """A chat completions client for GradientAI (or any OpenAI-compatible endpoint)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        model: str,
        timeout_s: float = 5.0,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._timeout = httpx.Timeout(timeout_s)

    async def rephrase(self, analysis: Analysis) -> tuple[str, list[str]]:
        """(summary, one text per item of `analysis.items`) in the model's words, grounded in the numbers."""
        facts = {
            "summary": analysis.summary,
            "items": [
                {
                    "corner": item.corner,
                    "kind": item.kind,
                    "text": item.text,
                    "timeLost": round(item.time_lost, 2),
                    "evidence": item.evidence,
                }
                for item in analysis.items
            ],
        }
        body = {
            "model": self._model,
            "temperature": 0.2,
            "max_tokens": 600,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": json.dumps(facts, separators=(",", ":"))},
            ],
        }
        try:
            response = await self._http.post(
                self._url,
                json=body,
                headers={"Authorization": f"Bearer {self._api_key}"},
                timeout=self._timeout,
            )
        except httpx.TimeoutException:
            raise GradientFailure("timeout") from None
        except httpx.HTTPError as exc:
            raise GradientFailure(f"unavailable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise GradientFailure(f"http_{response.status_code}")
        summary, texts = _parse_completion(response)
        _check_grounded(analysis, texts)
        return summary, texts


def _parse_completion(response: httpx.Response) -> tuple[str, list[str]]:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise GradientFailure("bad_answer: not a chat completion") from None
    if not isinstance(content, str):
        raise GradientFailure("bad_answer: no message content")
    text = content.strip()
    if text.startswith("```"):  # models like to fence JSON
        text = text.strip("`").removeprefix("json").strip()
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise GradientFailure("bad_answer: content is not JSON") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("summary"), str)
        or not isinstance(data.get("items"), list)
        or not all(isinstance(item, str) and item.strip() for item in data["items"])
    ):
        raise GradientFailure("bad_answer: summary and items (strings) are required")
    return data["summary"].strip()[:MAX_TEXT_CHARS], [item.strip()[:MAX_TEXT_CHARS] for item in data["items"]]


def _check_grounded(analysis: Analysis, texts: list[str]) -> None:
    """Every rephrased item keeps its corner and its time; anything else is a model making things up."""
    items = analysis.items
    if len(texts) != len(items):
        raise GradientFailure("ungrounded: item count changed")
    for item, text in zip(items, texts, strict=True):
        figure = f"{abs(item.time_lost):.2f}"
        if item.corner.lower() not in text.lower() or figure not in text:
            raise GradientFailure(f"ungrounded: {item.corner} lost its corner name or its {figure} s")
