"""Errors are named for their situation, each with a code of its own, and every route lists in /openapi.json the
codes it may answer (`x-error-codes`, per status); real error answers carry a code their route lists."""

from __future__ import annotations

import importlib
import pkgutil
import re
import uuid
from typing import Any

import httpx

import pitbox
from pitbox.errors import PitboxError
from pitbox.telemetry.models import MAX_CHANNELS
from tests.conftest import Team, assert_error

#: The base classes: each answers its status's generic code (a situation of its own raises a subclass).
GENERIC = {
    "bad_request",
    "invalid",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "payload_too_large",
}
GENERIC |= {"unsupported_media_type", "rate_limited", "unavailable"}


def _situations() -> list[type[PitboxError]]:
    for module in pkgutil.walk_packages(pitbox.__path__, "pitbox."):
        if module.name.endswith(".errors"):
            importlib.import_module(module.name)
    found: list[type[PitboxError]] = []
    todo: list[type[PitboxError]] = [PitboxError]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += current.__subclasses__()
    return found


def test_every_situation_has_a_code_of_its_own_and_says_when_it_happens() -> None:
    situations = [s for s in _situations() if s.code not in GENERIC]
    codes = [s.code for s in situations]
    assert len(situations) > 60  # the situations of every domain were found
    assert sorted(c for c in set(codes) if codes.count(c) > 1) == []
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", code) for code in codes)
    assert [s.__name__ for s in situations if not (s.__doc__ or "").strip()] == []


def test_no_code_is_passed_as_a_string_any_more() -> None:
    source = "\n".join(path.read_text() for path in _package_files())
    assert re.findall(r"\bcode=\"[a-z_]+\"", source) == []


def _package_files() -> list[Any]:
    from pathlib import Path

    return sorted(Path(pitbox.__file__).parent.rglob("*.py"))


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_operation_lists_the_codes_of_each_error_status(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]
    assert len(operations) > 50
    for path, method, operation in operations:
        errors = {s: r for s, r in operation["responses"].items() if s[:1] in "45"}
        assert errors, f"{method} {path} documents no error"
        for status, response in errors.items():
            if (path, status) == ("/health", "503"):  # the probe answers its report, in its own schema
                continue
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
            assert response["x-error-codes"], f"{method} {path} {status} lists no code"


def _listed(document: dict[str, Any], method: str, path: str, status: int) -> list[str]:
    codes: list[str] = document["paths"][path][method]["responses"][str(status)]["x-error-codes"]
    return codes


async def test_the_codes_real_errors_answer_are_the_ones_their_routes_list(
    client: httpx.AsyncClient, team: Team, other_team: Team
) -> None:
    document = await _document(client)
    driver = team.driver
    body = {"driverId": driver.driver_id, "name": f"run {uuid.uuid4().hex[:6]}"}
    created = await client.post("/api/sessions", json=body, headers=driver.headers)
    session_id = created.json()["id"]
    foreign = await client.post(
        "/api/sessions",
        json={"driverId": other_team.driver.driver_id, "name": "theirs"},
        headers=other_team.driver.headers,
    )
    sample = {"t": 0.0, "speed": 100.0}

    async def check(method: str, template: str, url: str, status: int, code: str, **kwargs: Any) -> None:
        response = await client.request(method, url, **kwargs)
        assert_error(response, status, code)
        assert code in _listed(document, method.lower(), template, status), (method, template, status, code)

    await check(
        "GET",
        "/api/sessions/{session_id}/laps",
        f"/api/sessions/{foreign.json()['id']}/laps",
        404,
        "not_found",
        headers=driver.headers,
    )
    await check(
        "GET",
        "/api/sessions/{session_id}/laps",
        f"/api/sessions/{session_id}/laps",
        401,
        "missing_credentials",
    )
    await check(
        "GET",
        "/api/sessions/{session_id}/telemetry",
        f"/api/sessions/{session_id}/telemetry?cursor=nonsense",
        422,
        "bad_cursor",
        headers=driver.headers,
    )
    await check(
        "POST",
        "/api/telemetry",
        "/api/telemetry",
        422,
        "too_many_channels",
        json={
            "driverId": driver.driver_id,
            "sessionId": session_id,
            "samples": [{"t": 0.0, **{f"c{i}": 1.0 for i in range(MAX_CHANNELS + 1)}}],
        },
        headers=driver.headers,
    )
    await check(
        "POST",
        "/api/auth/login",
        "/api/auth/login",
        401,
        "invalid_credentials",
        json={"email": driver.email, "password": "not-the-password"},
    )
    ended = await client.post(f"/api/sessions/{session_id}/end", headers=driver.headers)
    assert ended.status_code == 200
    await check(
        "POST",
        "/api/telemetry",
        "/api/telemetry",
        409,
        "session_ended",
        json={"driverId": driver.driver_id, "sessionId": session_id, "samples": [sample]},
        headers=driver.headers,
    )
