"""Schemathesis fuzzes every HTTP route of a real server against the server's own OpenAPI document.

Each operation gets schemathesis's coverage cases (boundary values, missing and unexpected fields, methods the
path does not take) and a bounded, derandomized run of positive and negative cases (some with ids of real
objects, so requests get past the 404 and into the code behind it), as an admin and as a team engineer. Every
check schemathesis has runs on every response (`--checks all`): a non-5xx with a documented status code,
content type, headers and body schema; a body the schema allows is not refused as invalid, one it forbids is;
a 405 names every method of its path in `Allow`; an operation that needs credentials refuses a request without
them. Run with `-s` to see the figures (requests, statuses, slowest operations) that docs/security.md quotes.
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
from schemathesis.checks import CHECKS
from schemathesis.core.failures import Failure
from schemathesis.core.result import Err
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import NO_FEEDBACK
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import positive_data_acceptance  # (and registers the OpenAPI checks)

from tests.conftest import RunningServer, Team, World
from tests.hardening.test_input_limits import new_session

#: Rules the server keeps that OpenAPI cannot state, as (error code, words of its message): a cursor must be one
#: the API gave out; query parameters that go (or may not go) together; sector splits in increasing order; text
#: that a voice can say; timestamps and clocks that make sense; text PostgreSQL can store (no NUL, no lone
#: surrogate) anywhere in a free-form body. A body or query the schema allows may be refused (422) for these
#: only; every other rule is in the schema (exactly one of `data`/`samples`/`columns`, of `driverId`/`teamId`…).
UNSTATED_RULES: dict[str, set[tuple[str, str]]] = {
    "*": {("invalid", "may not contain NUL"), ("invalid", "lone surrogates"), ("bad_cursor", "cursor")},
    "GET /api/sessions/{session_id}/telemetry": {
        ("invalid_telemetry", "points"),
        ("invalid_telemetry", "to: must not be before from"),
        ("invalid_telemetry", "cursor"),
        ("unknown_channels", ""),
    },
    "GET /api/sessions/{session_id}/video/nearest": {("invalid_query", "")},
    "POST /api/telemetry": {
        ("absurd_time", ""),  # clocks that go backwards, or timestamps far from the session's
        ("invalid_telemetry", "where the first channel has"),  # columns of equal length
        ("invalid_telemetry", "must be a whole number"),  # the lap counter
        ("invalid_telemetry", "source: must be one of"),
        ("invalid_telemetry", "seq: must be a non-negative integer"),  # 1.0 is an integer to JSON Schema
        ("invalid_timestamp", "must be a date and time"),  # epoch milliseconds within years 1 to 9999
    },
    "POST /api/video": {("absurd_time", "")},  # a timestamp after 2000 and at most a day from now
    "POST /api/drivers": {("invalid", "teamId is required")},  # for callers other than admins
    "POST /api/tracks": {("invalid", "sector splits must be increasing")},
    "PATCH /api/tracks/{track_id}": {("invalid", "sector splits must be increasing")},
    # The voices a server has depend on its configuration (Piper's bundled one, or the ElevenLabs account's).
    "POST /api/voice/synthesize": {
        ("nothing_to_say", ""),
        ("empty_text", ""),
        ("unknown_voice", "unknown voice"),
    },
    "POST /api/sessions/{session_id}/pit-wall": {("nothing_to_say", "")},
}


def positive_data_acceptance_but_unstated_rules(
    ctx: Any, response: Any, case: schemathesis.Case[Any]
) -> bool | None:
    """Schemathesis's `positive_data_acceptance`, except for a 422 that names one of UNSTATED_RULES."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except Failure:
        label = f"{case.method.upper()} {case.operation.path}"
        if response.status_code == 422 and _names_unstated_rule(label, response.json()):
            return None
        raise


def _names_unstated_rule(label: str, body: Any) -> bool:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    rules = UNSTATED_RULES["*"] | UNSTATED_RULES.get(label, set())
    return any(error.get("code") == code and words in error.get("message", "") for code, words in rules)


#: Every check schemathesis has, as `st run --checks all` runs them (with UNSTATED_RULES left to the server).
ALL_CHECKS = [
    positive_data_acceptance_but_unstated_rules if check is positive_data_acceptance else check
    for check in CHECKS.get_all()
]
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


def fuzz_api(
    base_url: str, token: str, known_ids: dict[str, str], examples: int, *, coverage: bool
) -> FuzzReport:
    """Fuzz every operation of the server's OpenAPI document with this bearer token (blocking; run in a thread),
    with schemathesis's coverage cases first when `coverage`."""
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
            ).filter(lambda case, media=media: media is None or case.media_type in (None, media))
            report.requests_by_operation[label] = 0

            send = _sender(report, label, base_url, http, headers)
            limit = SLOW_OPERATIONS.get(label)
            explicit = _coverage_cases(operation, media, limit) if coverage else []
            run = _bounded(send, cases, min(examples, limit or examples), explicit)
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
            base_url=base_url, session=http, headers=headers, checks=ALL_CHECKS, timeout=30
        )
        report.statuses[response.status_code] += 1

    return send


def _coverage_cases(
    operation: schemathesis.APIOperation[Any, Any, Any, Any], media: str | None, limit: int | None
) -> list[schemathesis.Case[Any]]:
    """Schemathesis's coverage cases of the operation (only its `media` body form, when one is given; only the
    methods the path does not take, for an operation given a `limit` of cases)."""
    generator = CoverageGenerator(
        operation=operation,
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=operation.schema.config.generation_for(operation=operation, phase="coverage"),
        auth_storage=None,
        override=Override(),
        feedback=NO_FEEDBACK,
    )
    cases = [case for case in generator if media is None or case.media_type in (None, media)]
    if limit is not None:
        cases = [case for case in cases if case.method.upper() != operation.method.upper()]
    return cases


def _bounded(
    send: Callable[[schemathesis.Case[Any]], None],
    cases: st.SearchStrategy[Any],
    examples: int,
    explicit: list[schemathesis.Case[Any]],
) -> Callable[[], None]:
    """A hypothesis test of `send` over the `explicit` cases, then `examples` drawn from `cases`: deterministic,
    no example database, no shrinking."""
    test = hypothesis.given(case=cases)(send)
    for case in reversed(explicit):  # hypothesis runs explicit examples in reverse order of attachment
        test = hypothesis.example(case=case)(test)
    return hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )(test)


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
    report = await asyncio.to_thread(
        fuzz_api, fuzz_server.url, admin.token, known, ADMIN_EXAMPLES, coverage=True
    )
    print(_summary(report))
    assert not report.failures, _summary(report)


async def test_fuzzed_api_as_team_engineer_answers_only_documented_non_5xx(
    fuzz_server: RunningServer, fuzz_world: World
) -> None:
    team = await fuzz_world.team()
    known = await _known_ids(fuzz_server, team)
    report = await asyncio.to_thread(
        fuzz_api, fuzz_server.url, team.engineer.token, known, ENGINEER_EXAMPLES, coverage=False
    )
    print(_summary(report))
    assert not report.failures, _summary(report)
