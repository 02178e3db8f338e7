"""Logs: one JSON line per request, and no secret (token, password, API key) ever in a line."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from pitbox.logs import configure_logging, redact_text
from tests.conftest import Team, World


def test_redaction_covers_query_tokens_and_bearer_headers() -> None:
    line = 'WebSocket /ws?token=eyJabc.def.ghi&x=1 "Authorization: Bearer eyJxyz.abc.def" password=hunter22'
    redacted = redact_text(line)
    for secret in ("eyJabc.def.ghi", "eyJxyz.abc.def", "hunter22"):
        assert secret not in redacted
    assert "x=1" in redacted


@pytest.fixture
def captured_logs() -> io.StringIO:
    configure_logging(logging.INFO)
    buffer = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)
    configure_logging(logging.WARNING)


async def test_requests_are_logged_as_json_without_secrets(
    client: httpx.AsyncClient, world: World, team: Team, captured_logs: io.StringIO
) -> None:
    user = await world.user("engineer", password="very-secret-password")
    login = await client.post(
        "/api/auth/login", json={"email": user.email, "password": "very-secret-password"}
    )
    token = login.json()["accessToken"]
    await client.get(f"/api/status?token={token}", headers={"Authorization": f"Bearer {token}"})
    created = await client.post(
        "/api/keys",
        json={"driverId": team.driver.driver_id, "scopes": ["telemetry:write"], "name": "relay"},
        headers=team.manager.headers,
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    # The key at work, in both headers a client may put it in.
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        me = await client.get("/api/me", headers=headers)
        assert me.status_code == 200 and me.json()["kind"] == "api_key", me.text
    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    requests = [entry for entry in lines if entry.get("event") == "request"]
    assert any(r["path"] == "/api/auth/login" and r["status"] == 200 and "duration_ms" in r for r in requests)
    assert sum(1 for r in requests if r["path"] == "/api/me" and r["status"] == 200) == 2
    assert all("request_id" in r for r in requests)
    secret = key.split("_", 2)[2]  # pbk_<prefix>_<secret>: the prefix alone may be shown, the secret never
    for leaked in (token, "very-secret-password", key, secret):
        assert leaked not in text
