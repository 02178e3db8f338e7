"""A server configured the way `pitbox serve` is (Settings read from the environment) coaches through the AI agent
at AI_AGENT_URL, and through GradientAI with GRADIENT_AI_API_KEY when the agent fails: stand-ins speaking their
documented protocols play both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pitbox.config import load_settings
from tests.conftest import TEST_JWT_SECRET, RunningServer, Team, World, free_port, run_server

from .conftest import RealLaps
from .test_feedback_api import columns_json, new_session
from .test_remote_sources import Stub, serve_stub


@pytest.fixture
async def configured(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningServer, Stub]]:
    """The stand-ins, and a server whose settings come from the environment naming them."""
    async with serve_stub() as stub:
        environment = {
            "DATABASE_URL": database_url,
            "JWT_SECRET": TEST_JWT_SECRET,
            "DATA_DIR": str(tmp_path),
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "LOG_LEVEL": "warning",
            "AI_AGENT_URL": f"{stub.url}/agent",
            "GRADIENT_AI_API_KEY": "gk-from-the-environment",
            "GRADIENT_AI_BASE_URL": f"{stub.url}/v1",
            "SPEAK_COACHING": "false",
            "INGEST_PROCESSES": "0",
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        async with run_server(load_settings(_env_file=None)) as server:
            yield server, stub


async def ask(client: httpx.AsyncClient, team: Team, langley: RealLaps) -> dict[str, Any]:
    """Feedback on the slowest lap against the best one, asked over HTTP by the team's engineer."""
    session_id = await new_session(client, team)
    slowest = max(langley.others, key=lambda lap: lap.time)
    body = {
        "driverId": team.driver.driver_id,
        "sessionId": session_id,
        "telemetryData": {
            "columns": columns_json(slowest.columns),
            "reference": {"columns": columns_json(langley.best.columns)},
        },
    }
    response = await client.post("/api/ai/feedback", json=body, headers=team.engineer.headers)
    assert response.status_code == 201, response.text
    feedback: dict[str, Any] = response.json()
    return feedback


async def test_the_agent_and_gradient_named_by_the_environment_are_used(
    configured: tuple[RunningServer, Stub], langley: RealLaps
) -> None:
    server, stub = configured
    team = await World(server.services).team()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        from_agent = await ask(client, team, langley)
        assert from_agent["source"] == "agent"
        assert from_agent["summary"].startswith("Agent: focus on")
        assert stub.state.requests[-1]["version"] == 1  # the agent contract's request (docs/ai-agent.md)

        stub.state.mode = "garbage"  # the agent answers nonsense: GradientAI phrases the analysis instead
        from_gradient = await ask(client, team, langley)
    assert from_gradient["source"].startswith("gradient (agent failed: bad_answer"), from_gradient["source"]
    assert from_gradient["summary"].startswith("Radio: ")
    assert stub.state.headers[-1]["authorization"] == "Bearer gk-from-the-environment"
