"""The JSON frames of the /ws protocol: encoding server frames once, reading client frames safely."""

from __future__ import annotations

import struct
from typing import Any

import orjson

from pitbox.errors import FrameTooLarge
from pitbox.realtime.errors import MalformedFrame

# Control and subscription frames are small; only telemetry ingest batches may be larger (docs/websocket.md).
MAX_CONTROL_FRAME_BYTES = 64 * 1024
MAX_INGEST_FRAME_BYTES = 1024 * 1024

# Close codes (RFC 6455 leaves 4000-4999 to applications; the last three digits echo the HTTP status).
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_AUTH_FAILED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4008
CLOSE_TOO_MANY_SOCKETS = 4429


def encode_data(data: Any) -> bytes:
    """`data` as JSON bytes (UUIDs, datetimes, dataclasses and numpy arrays included)."""
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class ServerFrame:
    """One server text frame, encoded once and shared by every socket it goes to.

    `payload` is the UTF-8 JSON and `wire` the whole unmasked WebSocket text frame (header included) for writing
    straight to a transport, both built once; `text` (for the ASGI send) is decoded on first use.
    """

    __slots__ = ("payload", "wire", "_text")

    def __init__(self, payload: bytes, text: str | None = None) -> None:
        self.payload = payload
        self.wire = websocket_text_frame(payload)
        self._text = text

    @classmethod
    def from_text(cls, text: str) -> ServerFrame:
        """A frame from JSON text (control frames, built per socket)."""
        return cls(text.encode(), text)

    @property
    def text(self) -> str:
        """The frame as a str, as an ASGI `websocket.send` takes it."""
        text = self._text
        if text is None:
            text = self._text = self.payload.decode()
        return text

    def __repr__(self) -> str:
        return f"ServerFrame({self.payload[:60]!r}{'...' if len(self.payload) > 60 else ''})"


def websocket_text_frame(payload: bytes) -> bytes:
    """A final, unmasked RFC 6455 text frame holding `payload` (servers never mask)."""
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x81, length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x81, 126, length)
    else:
        head = struct.pack("!BBQ", 0x81, 127, length)
    return head + payload


def message_frame(channel: str, seq: int, data_json: bytes) -> ServerFrame:
    """The `message` frame for one published message, built around already-encoded data."""
    head = b'{"type":"message","channel":' + orjson.dumps(channel) + b',"seq":' + str(seq).encode()
    return ServerFrame(head + b',"data":' + data_json + b"}")


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
        raise FrameTooLarge(f"frame is larger than {MAX_INGEST_FRAME_BYTES} bytes")
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedFrame("frame is not valid JSON") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise MalformedFrame("frame must be a JSON object with a string 'type'")
    if size > MAX_CONTROL_FRAME_BYTES and frame["type"] != "telemetry":
        raise FrameTooLarge(f"{frame['type']!r} frames may not exceed {MAX_CONTROL_FRAME_BYTES} bytes")
    return frame
