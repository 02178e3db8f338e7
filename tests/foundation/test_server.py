"""The running server: health, the one error shape, request ids, CORS, body limits, OpenAPI."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Actor, RunningServer, assert_error


async def test_health_reports_the_database_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["components"]["database"]["status"] == "ok"
    assert body["components"]["live"]["broker"] == "local"


async def test_status_needs_a_token_and_names_the_caller(client: httpx.AsyncClient, admin: Actor) -> None:
    assert_error(await client.get("/api/status"), 401, "missing_credentials")
    response = await client.get("/api/status", headers=admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["version"] and body["uptimeS"] >= 0
    assert body["identity"]["user"]["email"] == admin.email


async def test_unknown_route_and_wrong_method_use_the_error_shape(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/no/such/route"), 404, "not_found")
    assert_error(await client.delete("/health"), 405, "method_not_allowed")


async def test_malformed_json_is_a_4xx_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "invalid")


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    generated = await client.get("/health")
    assert len(generated.headers["x-request-id"]) >= 16
    kept = await client.get("/health", headers={"X-Request-ID": "relay-42"})
    assert kept.headers["x-request-id"] == "relay-42"


async def test_cors_allows_only_configured_origins(client: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "GET"}
    allowed = await client.options("/api/status", headers={"Origin": "http://dashboard.test", **preflight})
    assert allowed.headers.get("access-control-allow-origin") == "http://dashboard.test"
    refused = await client.options("/api/status", headers={"Origin": "http://evil.test", **preflight})
    assert "access-control-allow-origin" not in refused.headers


async def test_oversized_body_is_refused_with_413(client: httpx.AsyncClient, server: RunningServer) -> None:
    body = b"x" * (server.settings.max_body_bytes + 1)
    response = await client.post(
        "/api/auth/login", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


async def test_openapi_describes_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in ("/health", "/api/status", "/api/auth/login", "/api/teams", "/api/drivers", "/api/keys"):
        assert path in spec["paths"], path
    assert (await client.get("/docs")).status_code == 200


def says_what_it_holds(schema: dict[str, Any]) -> bool:
    """A schema that names a model, lists properties, or is an array of items that do; not `{}` nor "any
    object" (what a `dict[str, Any]` return publishes)."""
    if "$ref" in schema or schema.get("properties"):
        return True
    if "items" in schema:
        return says_what_it_holds(schema["items"])
    alternatives = schema.get("anyOf") or schema.get("oneOf") or []
    if alternatives:
        return all(says_what_it_holds(part) for part in alternatives if part.get("type") != "null")
    return schema.get("type") in {"string", "integer", "number", "boolean"}


async def test_every_json_success_answer_declares_what_it_holds(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    answers = [
        (f"{method.upper()} {path} {status} {media_type}", media.get("schema", {}))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status.startswith("2")
        for media_type, media in response.get("content", {}).items()
        if "json" in media_type
    ]

    assert len(answers) >= 45  # the issue counted 45 JSON success answers; more routes came since
    assert [name for name, schema in answers if not says_what_it_holds(schema)] == []
