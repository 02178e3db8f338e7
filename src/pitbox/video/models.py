"""Video frame types: what an upload says about a frame, a stored frame, the cursor of a frame listing, and the
answers of the video routes."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from pitbox.errors import (
    AbsurdTime,
    BadCursor,
    FrameTooLarge,
    Invalid,
    InvalidJson,
)
from pitbox.video.errors import InvalidBase64
from pitbox.wire import Answer, Timestamp

#: Frames stamped before this are refused (a clock that was never set).
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
#: How far in the future a frame's timestamp may be (clock skew across time zones, never more).
MAX_FUTURE_SKEW = timedelta(days=1)
#: A data URL prefix some clients put before the base64 text; its declared type is ignored (bytes decide).
_DATA_URL_PREFIX = b"data:"


@dataclass(frozen=True)
class FrameMeta:
    """Who a frame belongs to and when it was seen; the same for the base64 and the binary upload."""

    driver_id: uuid.UUID
    session_id: uuid.UUID
    timestamp: datetime

    @classmethod
    def from_fields(cls, driver_id: object, session_id: object, timestamp: object) -> FrameMeta:
        """Check the three fields of an upload (JSON values, query parameters or headers); Invalid when wrong."""
        return cls(
            _parse_uuid("driverId", driver_id),
            _parse_uuid("sessionId", session_id),
            parse_frame_timestamp(timestamp),
        )


def _parse_uuid(field: str, value: object) -> uuid.UUID:
    if value is None or value == "":
        raise Invalid.at(field, "is required")
    if not isinstance(value, str):
        raise Invalid.at(field, "must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Invalid.at(field, "must be a UUID") from None


def parse_frame_timestamp(value: object, now: datetime | None = None) -> datetime:
    """An ISO-8601 timestamp (UTC when it names no zone) between 2000 and a day from now; Invalid otherwise."""
    if value is None or value == "":
        raise Invalid.at("timestamp", "is required")
    if not isinstance(value, str):
        raise Invalid.at("timestamp", "must be an ISO-8601 string such as 2023-07-17T12:34:56Z")
    if "T" in value:
        value = value.replace(" ", "+")  # a `+01:00` offset typed into a query string arrives as ` 01:00`
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid.at("timestamp", "must be an ISO-8601 string such as 2023-07-17T12:34:56Z") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    if stamp < EARLIEST_TIMESTAMP or stamp > now + MAX_FUTURE_SKEW:
        raise AbsurdTime.at("timestamp", "must be after 2000 and at most a day in the future")
    return stamp.astimezone(UTC)


def parse_json_upload(body: bytes) -> tuple[FrameMeta, bytes]:
    """The SPEC's JSON upload `{driverId, sessionId, frameData, timestamp}`: its fields and the base64 text."""
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidJson("the body is not valid JSON") from None
    if not isinstance(message, dict):
        raise InvalidJson("the body must be a JSON object")
    meta = FrameMeta.from_fields(message.get("driverId"), message.get("sessionId"), message.get("timestamp"))
    frame_data = message.get("frameData")
    if not isinstance(frame_data, str) or not frame_data:
        raise Invalid.at("frameData", "is required: the image as base64 text")
    return meta, frame_data.encode("ascii", errors="replace")


def decode_base64_frame(text: bytes, max_bytes: int) -> bytes:
    """The image bytes of base64 `text` (standard alphabet, padded; a `data:…;base64,` prefix is allowed)."""
    if text.startswith(_DATA_URL_PREFIX):
        header, comma, rest = text.partition(b",")
        if not comma or not header.endswith(b";base64"):
            raise InvalidBase64.at("frameData", "a data URL must be base64-encoded")
        text = rest
    if len(text) > (max_bytes + 2) // 3 * 4:
        raise FrameTooLarge(f"frameData is larger than {max_bytes} bytes once decoded")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64.at("frameData", "is not well-formed base64") from None
    if not data:
        raise InvalidBase64.at("frameData", "is empty")
    return data


@dataclass(frozen=True)
class Frame:
    """A stored frame's metadata; `path` is its key in the frame store."""

    id: uuid.UUID
    session_id: uuid.UUID
    driver_id: uuid.UUID
    timestamp: datetime
    content_type: str
    bytes: int
    width: int
    height: int
    sha256: str
    path: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Frame:
        """A frame from a `video_frames` row."""
        return cls(
            row["id"],
            row["session_id"],
            row["driver_id"],
            row["ts"],
            row["content_type"],
            row["bytes"],
            row["width"],
            row["height"],
            row["sha256"],
            row["path"],
            row["created_at"],
        )

    @property
    def url(self) -> str:
        """Where the image itself is served."""
        return f"/api/video/{self.id}"


@dataclass(frozen=True)
class FrameCursor:
    """Where the next page of a frame listing starts: after the frame at `timestamp` with `id`."""

    timestamp: datetime
    id: uuid.UUID

    def encode(self) -> str:
        """The cursor as an opaque URL-safe string."""
        raw = orjson.dumps([self.timestamp.isoformat(), str(self.id)])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> FrameCursor:
        """Read a cursor given back by a client; Invalid when it was not made by `encode`."""
        try:
            stamp, frame_id = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            return cls(datetime.fromisoformat(stamp), uuid.UUID(frame_id))
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise BadCursor.at("cursor", "not a cursor this API gave out") from None


def frame_key(session_id: uuid.UUID, timestamp: datetime, sha256: str, extension: str) -> str:
    """The frame's key in the store, made only from checked values: `<sessionId>/<yyyymmddHH>/<sha256>.<ext>`."""
    return f"{session_id}/{timestamp.astimezone(UTC):%Y%m%d%H}/{sha256}.{extension}"


class VideoFrame(Answer):
    """A stored frame as the API shows it, with the URL of its image."""

    id: uuid.UUID
    session_id: uuid.UUID
    driver_id: uuid.UUID
    timestamp: Timestamp
    content_type: str
    bytes: int
    width: int
    height: int
    sha256: str
    url: str
    created_at: Timestamp

    @classmethod
    def fields_of(cls, frame: Frame) -> dict[str, Any]:
        """The fields of a stored frame, for this class and those that add to it."""
        return {
            "id": frame.id,
            "session_id": frame.session_id,
            "driver_id": frame.driver_id,
            "timestamp": frame.timestamp,
            "content_type": frame.content_type,
            "bytes": frame.bytes,
            "width": frame.width,
            "height": frame.height,
            "sha256": frame.sha256,
            "url": frame.url,
            "created_at": frame.created_at,
        }

    @classmethod
    def of(cls, frame: Frame) -> VideoFrame:
        """The answer for a stored frame."""
        return cls(**cls.fields_of(frame))


class UploadedFrame(VideoFrame):
    """The answer to an upload: the frame, and whether the session held it already (nothing new was stored)."""

    duplicate: bool


class FramePage(Answer):
    """A page of a session's frames in time order; `nextCursor` reads on (null on the last page)."""

    frames: list[VideoFrame]
    next_cursor: str | None


class NearestFrame(VideoFrame):
    """The frame nearest a moment: the moment asked for, and how far from it the frame is (ms, + after)."""

    requested_at: Timestamp
    offset_ms: float
