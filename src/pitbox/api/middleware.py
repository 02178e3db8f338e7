"""ASGI middleware: request ids, one log line per request and an answer for anything unexpected, and the
request body size limit."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pitbox.api.errors import error_body
from pitbox.logs import AlreadyLogged

log = structlog.get_logger("pitbox.access")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
#: Exceptions that stop the server or the task rather than fail one request: they pass through untouched.
_STOPPING = (KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit)
_NOSNIFF = (b"x-content-type-options", b"nosniff")


class ResponseAborted(AlreadyLogged):
    """A request failed after its answer had started: uvicorn drops the connection (the client sees a cut
    answer, never a complete-looking one). Already logged as the request's line, so uvicorn's own report of it
    is not (logs.py)."""


class RequestLogMiddleware:
    """Gives each request an id (X-Request-ID, kept when the client sent a sane one) and logs it once.

    Every answer carries `X-Request-ID` and `X-Content-Type-Options: nosniff` (stored frames, audio and exports
    are never sniffed into HTML). Anything a route raises that no handler took — any `BaseException`, native
    ones such as pyo3's `PanicException` included, except those that stop the server or a task — is answered
    here as a 500 in the one error shape with the request id, and logged once: the request's own line, at error
    level, with the exception.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        started = time.perf_counter()
        status = 500
        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                answered = True
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                if not any(name.lower() == _NOSNIFF[0] for name, _ in headers):
                    headers.append(_NOSNIFF)
                message["headers"] = headers
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        failure: BaseException | None = None
        cut = False
        try:
            await self.app(scope, receive, send_with_id)
        except _STOPPING:
            raise
        except BaseException as exc:
            failure = exc
            cut = answered
            if not answered:
                await _answer_unexpected(send_with_id, request_id)
        finally:
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            if failure is None:
                log.info("request", **fields)
            else:
                log.error("request", **fields, error=type(failure).__name__, exc_info=failure)
            structlog.contextvars.unbind_contextvars("request_id")
        if cut:
            raise ResponseAborted(type(failure).__name__) from None


async def _answer_unexpected(send: Send, request_id: str) -> None:
    body = orjson.dumps(error_body(500, "internal", "internal server error", {"requestId": request_id}))
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413 before they are read whole (by Content-Length or by counting)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps(
            error_body(413, "payload_too_large", f"request body is larger than {self.max_bytes} bytes")
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass
