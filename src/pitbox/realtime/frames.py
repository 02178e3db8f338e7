"""The JSON frames of the /ws protocol: encoding server frames once, reading client frames safely."""

from __future__ import annotations

from typing import Any

import orjson

from pitbox.errors import BadRequest, PayloadTooLarge

# Control and subscription frames are small; only telemetry ingest batches may be larger (docs/websocket.md).
MAX_CONTROL_FRAME_BYTES = 64 * 1024
MAX_INGEST_FRAME_BYTES = 1024 * 1024

# Close codes (RFC 6455 leaves 4000-4999 to applications; the last three digits echo the HTTP status).
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_AUTH_FAILED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4008


def encode_data(data: Any) -> bytes:
    """`data` as JSON bytes (UUIDs, datetimes, dataclasses and numpy arrays included)."""
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def message_frame(channel: str, seq: int, data_json: bytes) -> str:
    """The `message` frame for one published message, built around already-encoded data."""
    head = b'{"type":"message","channel":' + orjson.dumps(channel) + b',"seq":' + str(seq).encode()
    return (head + b',"data":' + data_json + b"}").decode()


def control_frame(frame_type: str, /, **fields: Any) -> str:
    """A server frame such as `subscribed`, `pong` or `resync`; None-valued fields are left out."""
    body = {"type": frame_type, **{k: v for k, v in fields.items() if v is not None}}
    return orjson.dumps(body).decode()


def error_frame(code: str, message: str, *, channel: str | None = None, request_id: Any = None) -> str:
    """An `error` frame: a stable `code` and a sentence for people."""
    return control_frame("error", code=code, message=message, channel=channel, id=request_id)


def parse_client_frame(raw: str | bytes) -> dict[str, Any]:
    """One client frame as a dict with a string `type`; BadRequest (malformed) or PayloadTooLarge otherwise."""
    size = len(raw)
    if size > MAX_INGEST_FRAME_BYTES:
        raise PayloadTooLarge(f"frame is larger than {MAX_INGEST_FRAME_BYTES} bytes", code="frame_too_large")
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("frame is not valid JSON", code="malformed") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise BadRequest("frame must be a JSON object with a string 'type'", code="malformed")
    if size > MAX_CONTROL_FRAME_BYTES and frame["type"] != "telemetry":
        raise PayloadTooLarge(
            f"{frame['type']!r} frames may not exceed {MAX_CONTROL_FRAME_BYTES} bytes", code="frame_too_large"
        )
    return frame
