"""Schemathesis fuzzes every HTTP route of a real server against the server's own OpenAPI document.

Each operation gets a bounded, derandomized run of positive and negative cases (some with ids of real objects,
so requests get past the 404 and into the code behind it), as an admin and as a team engineer. Every response
must be a non-5xx, with a documented status code, content type and body schema. Run with `-s` to see the
figures (requests, statuses, slowest operations) that docs/security.md quotes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import RunningServer, Team, World
from tests.hardening.test_input_limits import new_session

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: Cases per operation: the admin run goes wider, the engineer run proves authorization holds on every route.
ADMIN_EXAMPLES = 25
ENGINEER_EXAMPLES = 15
#: Real speech synthesis (Piper) costs about a second a case, so these get a handful of cases each.
SLOW_OPERATIONS = {"POST /api/voice/synthesize": 5, "POST /api/sessions/{session_id}/pit-wall": 5}
#: Operations that revoke the caller's token (a password change does when the fuzzer guesses the password).
SIGNS_OUT = {"PUT /api/me/password": 1, "POST /api/auth/logout-all": 2, "POST /api/auth/logout": 3}
#: Only the JSON form of the frame upload is fuzzed: the binary forms need real image bytes to mean anything.
JSON_ONLY = {"POST /api/video"}


@dataclass
class FuzzReport:
    """What one fuzzing run did: requests sent per operation, and the failures found."""

    requests_by_operation: dict[str, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    seconds_by_operation: dict[str, float] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        """Requests sent in all."""
        return sum(self.requests_by_operation.values())


def fuzz_api(base_url: str, token: str, known_ids: dict[str, str], examples: int) -> FuzzReport:
    """Fuzz every operation of the server's OpenAPI document with this bearer token (blocking; run in a thread)."""
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=30)
    report = FuzzReport()
    headers = {"Authorization": f"Bearer {token}"}
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            report.failures["schema"] = f"an operation cannot be fuzzed: {result.err()}"
        else:
            operations.append(result.ok())
    # Deletions last, so the objects behind the known ids live through the other operations; signing out
    # after them, since it revokes the token the run uses: the password change first (random passwords never
    # match, so it keeps the token), then logout-all and logout, which meet 401s once the token is revoked.
    operations.sort(
        key=lambda op: (SIGNS_OUT.get(f"{op.method.upper()} {op.path}", 0), op.method.upper() == "DELETE")
    )
    with requests.Session() as http:
        for operation in operations:
            label = f"{operation.method.upper()} {operation.path}"
            media = "application/json" if label in JSON_ONLY else None
            known = {name: value for name, value in known_ids.items() if name in _path_names(operation)}
            cases = st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE, media_type=media),
                operation.as_strategy(GenerationMode.NEGATIVE, media_type=media),
                operation.as_strategy(GenerationMode.POSITIVE, media_type=media, path_parameters=known),
            )
            report.requests_by_operation[label] = 0

            send = _sender(report, label, base_url, http, headers)
            run = _bounded(send, cases, min(examples, SLOW_OPERATIONS.get(label, examples)))
            operation_started = time.monotonic()
            try:
                run()
            except (Exception, BaseExceptionGroup) as failure:  # every failure is reported, the run goes on
                report.failures[label] = f"{type(failure).__name__}: {failure}"[:3000]
            report.seconds_by_operation[label] = time.monotonic() - operation_started
    report.seconds = time.monotonic() - started
    return report


def _sender(
    report: FuzzReport, label: str, base_url: str, http: requests.Session, headers: dict[str, str]
) -> Callable[[schemathesis.Case[Any]], None]:
    """Send one case and run the checks on its response, counting it under `label`."""

    def send(case: schemathesis.Case[Any]) -> None:
        report.requests_by_operation[label] += 1
        response = case.call_and_validate(
            base_url=base_url, session=http, headers=headers, checks=CHECKS, timeout=30
        )
        report.statuses[response.status_code] += 1

    return send


def _bounded(
    send: Callable[[schemathesis.Case[Any]], None], cases: st.SearchStrategy[Any], examples: int
) -> Callable[[], None]:
    """A hypothesis test of `send` over `cases`: deterministic, no example database, no shrinking."""
    return hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )(hypothesis.given(case=cases)(send))


def _path_names(operation: schemathesis.APIOperation[Any, Any, Any, Any]) -> set[str]:
    return {param.name for param in operation.path_parameters}


async def _known_ids(server: RunningServer, team: Team) -> dict[str, str]:
    """Ids of real objects the engineer may see, keyed by the path parameter names that take them."""
    return {
        "team_id": team.id,
        "driver_id": team.driver.driver_id or "",
        "user_id": team.driver.id,
        "session_id": await new_session(server, team),
    }


def _summary(report: FuzzReport) -> str:
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(report.statuses.items()))
    lines = [
        f"{report.requests} requests in {report.seconds:.1f}s ({len(report.requests_by_operation)} operations)"
    ]
    lines += [f"  statuses of passing cases: {statuses}"]
    slowest = sorted(report.seconds_by_operation.items(), key=lambda item: -item[1])[:8]
    lines += [
        f"  {seconds:5.1f}s {report.requests_by_operation[label]:4d} req  {label}"
        for label, seconds in slowest
    ]
    lines += [f"{label}: {text}" for label, text in report.failures.items()]
    return "\n".join(lines)


async def test_fuzzed_api_as_admin_answers_only_documented_non_5xx(
    fuzz_server: RunningServer, fuzz_world: World
) -> None:
    team = await fuzz_world.team()
    admin = await fuzz_world.user("admin")
    known = await _known_ids(fuzz_server, team)
    report = await asyncio.to_thread(fuzz_api, fuzz_server.url, admin.token, known, ADMIN_EXAMPLES)
    print(_summary(report))
    assert not report.failures, _summary(report)


async def test_fuzzed_api_as_team_engineer_answers_only_documented_non_5xx(
    fuzz_server: RunningServer, fuzz_world: World
) -> None:
    team = await fuzz_world.team()
    known = await _known_ids(fuzz_server, team)
    report = await asyncio.to_thread(fuzz_api, fuzz_server.url, team.engineer.token, known, ENGINEER_EXAMPLES)
    print(_summary(report))
    assert not report.failures, _summary(report)
