"""Every numeric query parameter the OpenAPI document declares, at its bounds: min-1 and max+1 are refused
with a 422, min and max are served, and nothing answers 5xx (issue 17: `points=2` was allowed and made the
LTTB library panic, a 500). The parameters are read from the document, so a new one is covered by itself.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import Team
from tests.telemetry.conftest import as_rows, new_session, post_batches, synthetic_laps
from tests.video.conftest import noise_image

#: Stand-ins for parameters without a bound on one side: the largest finite doubles and a far-out integer.
UNBOUNDED = {"number": 1.7976931348623157e308, "integer": 2**63}


def _numeric_query_parameters(openapi: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(method, path, name, schema) of every numeric query parameter."""
    found = []
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                for option in [schema, *schema.get("anyOf", [])]:
                    if parameter["in"] == "query" and option.get("type") in ("integer", "number"):
                        found.append((method.upper(), path, parameter["name"], option))
    return found


def _bounds(schema: dict[str, Any]) -> list[tuple[float, bool]]:
    """(value, in range) at each bound of a numeric schema."""
    far = UNBOUNDED[schema["type"]]
    cases: list[tuple[float, bool]] = []
    if "minimum" in schema:
        cases += [(schema["minimum"] - 1, False), (schema["minimum"], True)]
    elif "exclusiveMinimum" in schema:
        cases += [(schema["exclusiveMinimum"], False), (schema["exclusiveMinimum"] + 1, True)]
    else:
        cases += [(-far, True)]
    if "maximum" in schema:
        cases += [(schema["maximum"], True), (schema["maximum"] + 1, False)]
    elif "exclusiveMaximum" in schema:
        cases += [(schema["exclusiveMaximum"] - 1, True), (schema["exclusiveMaximum"], False)]
    else:
        cases += [(far, True)]
    return cases


async def test_every_numeric_query_parameter_at_its_bounds_is_refused_or_served_never_a_5xx(
    client: httpx.AsyncClient, team: Team
) -> None:
    h = team.engineer.headers
    driver = str(team.driver.driver_id)
    session = await new_session(client, team.engineer, driver, car="GT3")
    await post_batches(client, h, driver, session, as_rows(synthetic_laps(laps=2)))
    frame = await client.post(
        "/api/video",
        json={
            "driverId": driver,
            "sessionId": session,
            "frameData": base64.b64encode(noise_image("JPEG")).decode(),
            "timestamp": datetime.now(UTC).isoformat(),
        },
        headers=h,
    )
    assert frame.status_code == 201, frame.text
    ids = {"session_id": session, "driver_id": driver, "lap": "1", "team_id": team.id}
    # Parameters a request needs beside the one at its bound: a required one, or the other of a pair.
    nearest = "/api/sessions/{session_id}/video/nearest"
    companions = {
        ("/api/sessions/{session_id}/laps/{lap}/compare", "points"): {"with": "2"},
        (nearest, "lap"): {"lapDistPct": "0.5"},
        (nearest, "lapDistPct"): {"lap": "1"},
    }
    openapi = (await client.get("/openapi.json")).json()
    parameters = _numeric_query_parameters(openapi)
    assert {name for _, _, name, _ in parameters} >= {"points", "limit", "lap", "sessionTime"}
    wrong = []
    for method, path, name, schema in parameters:
        url = path.format(**ids)
        for value, in_range in _bounds(schema):
            text = str(int(value)) if schema["type"] == "integer" else repr(float(value))
            params = {**companions.get((path, name), {}), name: text}
            response = await client.request(method, url, params=params, headers=h)
            refused = response.status_code == 422
            if response.status_code >= 500 or refused == in_range:
                wrong.append((method, path, name, text, response.status_code, response.text[:120]))
    assert not wrong, wrong
