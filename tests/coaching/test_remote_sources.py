"""The AI agent and GradientAI, each played by a local HTTP server: answers used, failures fall back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pitbox.auth.principal import Principal
from pitbox.coaching.agent import AgentClient, CircuitBreaker
from pitbox.coaching.gradient import GradientClient
from pitbox.coaching.wiring import Coaching, assemble_coaching
from tests.conftest import RunningServer, Team, free_port

from .conftest import LANGLEY, RealLaps
from .test_feedback_api import columns_json, ingest, new_session


@dataclass
class StubState:
    """How the stand-in answers next, and what it was sent. In `slow` mode it answers only once `release` is
    set (at the end of the test): a caller's timeout is then the only way out, however busy the machine."""

    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


async def agent_endpoint(request: Request) -> Response:
    state: StubState = request.app.state.stub
    body = await request.json()
    state.requests.append(body)
    mode = state.mode
    if mode == "slow":
        await state.release.wait()
    if mode == "garbage":
        return PlainTextResponse("<html>surprise</html>")
    if mode == "wrong_shape":
        return JSONResponse({"advice": 42})
    if mode == "flaky" and len(state.requests) == 1:
        return JSONResponse({"error": "busy"}, status_code=503)
    if mode == "ask" and "telemetry" not in body:
        return JSONResponse({"needTelemetry": ["speed", "throttle"]})
    if body["analysis"] is None:  # a telemetry object and no lap yet: coach from the object alone
        speed = body["telemetryData"].get("speed")
        return JSONResponse(
            {"summary": f"Agent: {speed} km/h noted.", "items": [{"text": "Agent: build tyre temperature."}]}
        )
    items = body["analysis"]["items"]  # a new best may have nothing to improve
    worst = items[0] if items else {"corner": "the whole lap"}
    points = len(body["telemetry"]["distance"]) if "telemetry" in body else 0
    return JSONResponse(
        {
            "summary": f"Agent: focus on {worst['corner']} ({points} points seen).",
            "items": [
                {
                    "corner": worst["corner"],
                    "text": f"Agent: {worst['corner']} needs work.",
                    "confidence": 0.7,
                }
            ],
        }
    )


async def chat_completions(request: Request) -> Response:
    state: StubState = request.app.state.stub
    body = await request.json()
    state.requests.append(body)
    state.headers.append(dict(request.headers))
    if state.mode == "slow":
        await state.release.wait()
    facts = json.loads(body["messages"][-1]["content"])
    if state.mode == "ungrounded":
        texts = ["You were slow somewhere." for _ in facts["items"]]
    else:
        texts = [f"Radio check. {item['text']}" for item in facts["items"]]
    content = json.dumps({"summary": "Radio: " + facts["summary"], "items": texts})
    return JSONResponse(
        {
            "id": "cmpl-1",
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": f"```json\n{content}\n```"}}
            ],
        }
    )


@dataclass
class Stub:
    url: str
    state: StubState


@contextlib.asynccontextmanager
async def serve_stub() -> AsyncIterator[Stub]:
    """A local server playing the AI agent (POST /agent) and GradientAI (POST /v1/chat/completions)."""
    app = Starlette(
        routes=[
            Route("/agent", agent_endpoint, methods=["POST"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ]
    )
    state = app.state.stub = StubState()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("stub server did not start")
        await asyncio.sleep(0.01)
    try:
        yield Stub(f"http://127.0.0.1:{port}", state)
    finally:
        state.release.set()  # answer what still hangs, so the server can stop
        server.should_exit = True
        await task


@pytest.fixture
async def stub() -> AsyncIterator[Stub]:
    """The stand-in AI agent and GradientAI (`serve_stub`)."""
    async with serve_stub() as running:
        yield running


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


async def coaching_with(
    server: RunningServer,
    http: httpx.AsyncClient,
    *,
    agent: AgentClient | None = None,
    gradient: GradientClient | None = None,
) -> Coaching:
    services = server.services
    return assemble_coaching(
        services.database.pool,
        services.access,
        services.hub,
        voice=None,
        agent=agent,
        gradient=gradient,
        speak_feedback=False,
    )


async def ask(coaching: Coaching, client: httpx.AsyncClient, team: Team, langley: RealLaps) -> dict[str, Any]:
    session_id = await new_session(client, team)
    principal = Principal(kind="user", user_id=uuid.UUID(team.manager.id), role="manager")
    slowest = max(langley.others, key=lambda lap: lap.time)
    telemetry = {
        "columns": columns_json(slowest.columns),
        "reference": {"columns": columns_json(langley.best.columns)},
    }
    return await coaching.requests.request_feedback(
        principal, uuid.UUID(team.driver.driver_id or ""), uuid.UUID(session_id), telemetry
    )


async def test_agent_answer_is_used_and_can_ask_for_telemetry(
    server: RunningServer, client: httpx.AsyncClient, team: Team, langley: RealLaps, stub: Stub
) -> None:
    stub.state.mode = "ask"
    async with httpx.AsyncClient() as http:
        coaching = await coaching_with(
            server, http, agent=AgentClient(http, f"{stub.url}/agent", timeout_s=10.0)
        )
        feedback = await ask(coaching, client, team, langley)
    assert feedback["source"] == "agent"
    assert feedback["summary"].startswith("Agent: focus on Turn")
    assert "points seen" in feedback["summary"] and "(0 points" not in feedback["summary"]
    first, second = stub.state.requests
    assert first["version"] == 1 and first["analysis"]["items"] and "telemetry" not in first
    assert set(second["telemetry"]["lap"]) == {"speed", "throttle"}
    assert feedback["items"][0]["evidence"]["corner"] == feedback["items"][0]["corner"]


async def test_a_telemetry_object_is_passed_on_to_the_agent(
    server: RunningServer, client: httpx.AsyncClient, team: Team, stub: Stub
) -> None:
    session_id = await new_session(client, team)
    principal = Principal(kind="user", user_id=uuid.UUID(team.manager.id), role="manager")
    driver_id, session = uuid.UUID(team.driver.driver_id or ""), uuid.UUID(session_id)
    telemetry = {"speed": 120.5, "rpm": 7500, "gear": 4, "throttle": 0.75, "brake": 0.0, "steering": -0.1}
    async with httpx.AsyncClient() as http:
        agent = AgentClient(http, f"{stub.url}/agent", timeout_s=2.0)
        coaching = await coaching_with(server, http, agent=agent)
        feedback = await coaching.requests.request_feedback(principal, driver_id, session, telemetry)
        assert stub.state.requests[-1]["telemetryData"] == telemetry
        assert stub.state.requests[-1]["lap"] is None and stub.state.requests[-1]["analysis"] is None
        assert feedback["source"] == "agent" and feedback["summary"] == "Agent: 120.5 km/h noted."
        assert [item["text"] for item in feedback["items"]] == ["Agent: build tyre temperature."]

        stub.state.mode = "garbage"  # the agent fails: the note that there is no lap yet stands
        feedback = await coaching.requests.request_feedback(principal, driver_id, session, telemetry)
        assert feedback["source"] == "analyst (agent failed: bad_answer: not JSON)"
        assert feedback["items"] == [] and feedback["summary"].startswith("No lap to coach")

        stub.state.mode = "ok"  # once a lap is completed the agent gets its analysis and the object
        await ingest(client, team.driver, session_id, LANGLEY.format("14-46-23"))
        laps = (await client.get(f"/api/sessions/{session_id}/laps", headers=team.driver.headers)).json()
        feedback = await coaching.requests.request_feedback(principal, driver_id, session, telemetry)
    sent = stub.state.requests[-1]
    assert sent["telemetryData"] == telemetry and sent["analysis"]["lap"] == sent["lap"]
    assert sent["lap"] == feedback["lap"] == max(laps, key=lambda lap: lap["tEnd"])["lap"]
    assert feedback["source"] == "agent"


async def test_agent_down_slow_or_garbage_falls_back_to_the_analyst(
    server: RunningServer, client: httpx.AsyncClient, team: Team, langley: RealLaps, stub: Stub
) -> None:
    async with httpx.AsyncClient() as http:
        down = AgentClient(http, f"http://127.0.0.1:{free_port()}/agent", timeout_s=0.5, backoff_s=0.01)
        feedback = await ask(await coaching_with(server, http, agent=down), client, team, langley)
        assert feedback["source"].startswith("analyst (agent failed: unavailable")
        assert feedback["items"] and feedback["items"][0]["text"].startswith("Turn")

        for mode, reason in [
            ("slow", "timeout"),
            ("garbage", "bad_answer: not JSON"),
            ("wrong_shape", "bad_answer"),
        ]:
            stub.state.mode = mode
            # The slow agent never answers: any timeout ends it. The others answer at once; 10 s is a safety net.
            timeout_s = 0.3 if mode == "slow" else 10.0
            agent = AgentClient(http, f"{stub.url}/agent", timeout_s=timeout_s, max_attempts=1)
            feedback = await ask(await coaching_with(server, http, agent=agent), client, team, langley)
            assert feedback["source"].startswith(f"analyst (agent failed: {reason}"), feedback["source"]
            assert feedback["items"]


async def test_agent_is_retried_after_a_5xx(
    server: RunningServer, client: httpx.AsyncClient, team: Team, langley: RealLaps, stub: Stub
) -> None:
    stub.state.mode = "flaky"
    async with httpx.AsyncClient() as http:
        agent = AgentClient(http, f"{stub.url}/agent", timeout_s=10.0, max_attempts=2, backoff_s=0.01)
        feedback = await ask(await coaching_with(server, http, agent=agent), client, team, langley)
    assert feedback["source"] == "agent"
    assert len(stub.state.requests) == 2


async def test_circuit_opens_after_failures_and_closes_after_a_good_trial(
    server: RunningServer, client: httpx.AsyncClient, team: Team, langley: RealLaps, stub: Stub
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=30.0, clock=clock)
    stub.state.mode = "garbage"
    async with httpx.AsyncClient() as http:
        agent = AgentClient(http, f"{stub.url}/agent", timeout_s=10.0, max_attempts=1, breaker=breaker)
        coaching = await coaching_with(server, http, agent=agent)
        for _ in range(2):
            assert (await ask(coaching, client, team, langley))["source"].startswith(
                "analyst (agent failed: bad_answer"
            )
        assert breaker.state == "open"
        sent = len(stub.state.requests)
        skipped = await ask(coaching, client, team, langley)
        assert skipped["source"] == "analyst (agent failed: circuit_open)"
        assert len(stub.state.requests) == sent  # an open circuit does not call the agent at all

        clock.now += 31.0
        assert breaker.state == "half_open"
        trial = await ask(coaching, client, team, langley)  # the trial fails: open again
        assert trial["source"].startswith("analyst (agent failed: bad_answer")
        assert breaker.state == "open"

        clock.now += 31.0
        stub.state.mode = "ok"
        assert (await ask(coaching, client, team, langley))["source"] == "agent"
        assert breaker.state == "closed"


async def test_gradient_rephrases_the_analysis_keeping_its_numbers(
    server: RunningServer, client: httpx.AsyncClient, team: Team, langley: RealLaps, stub: Stub
) -> None:
    async with httpx.AsyncClient() as http:
        gradient = GradientClient(
            http, api_key="gk-test", base_url=f"{stub.url}/v1", model="llama3.3-70b-instruct"
        )
        coaching = await coaching_with(server, http, gradient=gradient)
        feedback = await ask(coaching, client, team, langley)
        assert feedback["source"] == "gradient"
        assert feedback["summary"].startswith("Radio: ")
        assert all(item["text"].startswith("Radio check. Turn") for item in feedback["items"])
        sent = stub.state.requests[-1]
        assert sent["model"] == "llama3.3-70b-instruct" and sent["messages"][0]["role"] == "system"
        assert stub.state.headers[-1]["authorization"] == "Bearer gk-test"

        stub.state.mode = "ungrounded"
        feedback = await ask(coaching, client, team, langley)
        assert feedback["source"].startswith("analyst (gradient failed: ungrounded")
        assert feedback["items"][0]["text"].startswith("Turn")


async def test_a_full_backlog_drops_laps_instead_of_waiting(server: RunningServer) -> None:
    services = server.services
    coaching = assemble_coaching(
        services.database.pool, services.access, services.hub, queue_size=2, workers=1, speak_feedback=False
    )
    await coaching.live.start()
    try:
        session_id, driver_id = uuid.uuid4(), uuid.uuid4()
        accepted = [coaching.live.on_lap_completed(session_id, driver_id, lap) for lap in range(5)]
        assert accepted == [True, True, False, False, False]
        assert coaching.counters["dropped"] == 3 and coaching.live.backlog == 2
        await coaching.live.idle()
        assert coaching.live.backlog == 0
    finally:
        await coaching.live.close()


async def test_unreachable_or_slow_gradient_leaves_the_built_in_text(
    server: RunningServer, client: httpx.AsyncClient, team: Team, langley: RealLaps, stub: Stub
) -> None:
    async with httpx.AsyncClient() as http:
        nobody = GradientClient(
            http, api_key="gk-test", base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout_s=0.5
        )
        feedback = await ask(await coaching_with(server, http, gradient=nobody), client, team, langley)
        assert feedback["source"].startswith("analyst (gradient failed:"), feedback["source"]
        assert feedback["items"] and feedback["items"][0]["text"].startswith("Turn")

        stub.state.mode = "slow"
        slow = GradientClient(http, api_key="gk-test", base_url=f"{stub.url}/v1", model="m", timeout_s=0.3)
        feedback = await ask(await coaching_with(server, http, gradient=slow), client, team, langley)
        assert feedback["source"].startswith("analyst (gradient failed:"), feedback["source"]
        assert feedback["items"][0]["text"].startswith("Turn")
