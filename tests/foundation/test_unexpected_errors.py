"""Anything a route raises that no handler expects — a Python exception, or a native BaseException such as the
PanicException pyo3 raises when Rust code panics — is answered as a 500 in the one error shape carrying the
request id, and logged as exactly one JSON line (issue 17, item 2).

The server here is the real app under the real uvicorn configuration, with three extra routes that fail the
ways a route can fail: a real Rust panic (tsdownsample asked for fewer points than it allows), a plain
exception, and an exception after the answer has started streaming.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from starlette.responses import StreamingResponse
from tsdownsample import LTTBDownsampler

from pitbox.app import create_app
from pitbox.logs import configure_logging
from pitbox.serving import make_server
from tests.conftest import assert_error, make_settings


def _panic() -> None:
    x = np.arange(10.0)
    LTTBDownsampler().downsample(x, x, n_out=2)  # type: ignore[no-untyped-call]  # Rust: assert n_out >= 3


def _fail() -> None:
    raise RuntimeError("a bug")


def _cut_stream() -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        yield b"t,speed\n"
        _panic()

    return StreamingResponse(parts(), media_type="text/csv")


@pytest.fixture
def stdout_lines() -> Iterator[io.StringIO]:
    """What the server writes on its stdout (the log handler's stream), as `pitbox serve` configures it."""
    configure_logging(logging.INFO)
    buffer = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)
    configure_logging(logging.WARNING)


@pytest.fixture
async def failing_server(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    settings = make_settings(database_url, tmp_path)
    app = create_app(settings)
    app.add_api_route("/test/panic", _panic)
    app.add_api_route("/test/fail", _fail)
    app.add_api_route("/test/cut", _cut_stream)
    server = make_server(app, settings)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("path", ["/test/panic", "/test/fail"])
async def test_unexpected_failures_answer_the_error_shape_with_the_request_id_and_log_one_json_line(
    failing_server: str, stdout_lines: io.StringIO, path: str
) -> None:
    async with httpx.AsyncClient(base_url=failing_server) as client:
        response = await client.get(path, headers={"X-Request-ID": "failing-request-1"})
    error = assert_error(response, 500, "internal")
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "failing-request-1"
    assert error["details"] == {"requestId": "failing-request-1"}
    lines = stdout_lines.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]  # every line on stdout is JSON
    mine = [entry for entry in entries if "failing-request-1" in json.dumps(entry)]
    assert len(mine) == 1, mine
    assert mine[0]["status"] == 500 and mine[0]["level"] == "error"
    assert mine[0]["error"] == ("PanicException" if path == "/test/panic" else "RuntimeError")
    assert "Traceback" in mine[0]["exception"]


async def test_a_failure_mid_stream_cuts_the_connection_and_logs_one_json_line(
    failing_server: str, stdout_lines: io.StringIO
) -> None:
    async with httpx.AsyncClient(base_url=failing_server) as client:
        with pytest.raises(httpx.RemoteProtocolError):  # never a complete-looking, truncated export
            await client.get("/test/cut", headers={"X-Request-ID": "failing-request-2"})
    entries = [json.loads(line) for line in stdout_lines.getvalue().splitlines()]
    assert not any("Exception in ASGI application" in entry.get("event", "") for entry in entries)
    mine = [entry for entry in entries if "failing-request-2" in json.dumps(entry)]
    assert len(mine) == 1 and mine[0]["error"] == "PanicException", mine
