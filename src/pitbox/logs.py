"""Structured JSON logs for our code and for the libraries that log through the stdlib (uvicorn, asyncpg)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Tokens travel in `?token=` for WebSocket clients that cannot set headers: never let one reach a log line.
_SECRET_IN_TEXT = re.compile(r"((?:token|access_token|api_key|key|password)=)[^&\s\"']+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_SECRET_KEYS = {"password", "token", "authorization", "api_key", "secret", "jwt_secret", "x-api-key"}


class AlreadyLogged(Exception):
    """Raised to make the server drop a connection after our own log line told the story: the server's report
    of it (uvicorn's "Exception in ASGI application" with a traceback) would be a second line, so it is dropped."""


def _not_already_logged(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], AlreadyLogged))


def redact_text(text: str) -> str:
    """`text` with query-string secrets and bearer tokens replaced by `***`."""
    return _BEARER.sub(r"\1***", _SECRET_IN_TEXT.sub(r"\1***", text))


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key.lower() in _SECRET_KEYS:
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = redact_text(value)
        elif isinstance(value, tuple | list):
            event[key] = type(value)(redact_text(v) if isinstance(v, str) else v for v in value)
    return event


def _render_positional_args(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # uvicorn logs '%s - "WebSocket %s" [accepted]' with args: format before redacting, so args are covered.
    record = event.get("_record")
    if record is not None and record.args:
        event["event"] = record.getMessage()
        event.pop("positional_args", None)
    return event


def configure_logging(level: int) -> None:
    """Send every log line, ours and the libraries', to stderr as one JSON object with secrets redacted.

    stderr, not stdout: a command's stdout holds only its result (a record's JSON, a token), so that
    `pitbox users create … | jq .driverId` reads nothing else, whatever the command logged on the way.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _render_positional_args],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redact,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_not_already_logged)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lib = logging.getLogger(name)
        lib.handlers[:] = []
        lib.propagate = True
    # pgserver narrates every initdb/pg_ctl command at INFO; its warnings are what an operator needs.
    logging.getLogger("pgserver").setLevel(max(level, logging.WARNING))
    # Our own middleware writes one line per request; uvicorn's access line would be a second (with the query).
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
