"""Video frames: accept an upload (checked, authorized, stored once per session, published after commit), serve
frames back (listing, image, nearest to a time), and prune old ones (rows and files together).

An upload is checked in order of cost: its fields, then who may write, then its size, then the image itself
(in a thread). The file is written before the row, so a row never points at a missing file; a file whose row
could not be written is removed again.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from pitbox.auth.access import Access
from pitbox.auth.principal import Principal
from pitbox.db.types import Connection
from pitbox.errors import FrameTooLarge, NotFound
from pitbox.lifecycle import Lifecycle, Periodic
from pitbox.realtime.publisher import Publisher, video_channel
from pitbox.video import store
from pitbox.video.errors import EmptyFrame, FrameChangedRetry, InvalidQuery, NoFrames
from pitbox.video.frame_store import FrameStore
from pitbox.video.images import CheckedImage, PixelLimits, check_image
from pitbox.video.models import (
    Frame,
    FrameCursor,
    FrameMeta,
    FramePage,
    NearestFrame,
    UploadedFrame,
    VideoFrame,
    decode_base64_frame,
    frame_key,
    parse_json_upload,
)

log = structlog.get_logger(__name__)

#: Largest frame accepted, in bytes of image (the base64 text may be a third longer).
DEFAULT_MAX_FRAME_BYTES = 5 * 1024 * 1024
#: Frames up to this size travel inline (base64) in the `video:<driverId>` message; larger ones by URL only.
INLINE_IMAGE_BYTES = 64 * 1024
#: Room for the JSON around `frameData` in a base64 upload.
_JSON_OVERHEAD_BYTES = 4096
#: Frames deleted per statement when pruning (keeps each transaction short).
PRUNE_BATCH = 1000
#: How often automatic retention runs.
RETENTION_INTERVAL_S = 3600.0


@dataclass(frozen=True)
class AcceptedFrame:
    """The answer to an upload: the frame, and whether it was already stored (then nothing new was written)."""

    frame: Frame
    duplicate: bool

    def answer(self) -> UploadedFrame:
        """The frame with `duplicate`, as the API answers an upload."""
        return UploadedFrame(**VideoFrame.fields_of(self.frame), duplicate=self.duplicate)


async def read_limited(chunks: AsyncIterable[bytes], max_bytes: int, what: str) -> bytes:
    """The whole body, or PayloadTooLarge as soon as it grows past `max_bytes` (the rest is never buffered)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise FrameTooLarge(f"{what} is larger than {max_bytes} bytes")
        parts.append(chunk)
    return b"".join(parts)


class VideoService(Lifecycle):
    """Accepts, serves and prunes video frames; images go to a `FrameStore`, metadata to PostgreSQL. With a
    `retention`, frames older than it are pruned at `start()` and then every RETENTION_INTERVAL_S."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        access: Access,
        publisher: Publisher,
        frames: FrameStore,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        pixel_limits: PixelLimits | None = None,
        retention: timedelta | None = None,
    ) -> None:
        self._pool = pool
        self._access = access
        self._publisher = publisher
        self._frames = frames
        self._max_frame_bytes = max_frame_bytes
        self._pixel_limits = pixel_limits or PixelLimits()
        self._retention = retention
        self._pruning = Periodic(
            "video-retention",
            RETENTION_INTERVAL_S if retention is not None else 0.0,
            self._prune_expired,
            at_start=True,
        )

    # -- upload ------------------------------------------------------------------------------------------

    async def ingest_json(self, principal: Principal, body: AsyncIterable[bytes]) -> AcceptedFrame:
        """The SPEC's upload: a JSON body `{driverId, sessionId, frameData (base64), timestamp}`."""
        max_body = (self._max_frame_bytes + 2) // 3 * 4 + _JSON_OVERHEAD_BYTES
        meta, text = parse_json_upload(await read_limited(body, max_body, "the JSON body"))
        await self._authorize_write(principal, meta)
        return await self._accept(meta, decode_base64_frame(text, self._max_frame_bytes))

    async def ingest_binary(
        self, principal: Principal, meta: FrameMeta, body: AsyncIterable[bytes]
    ) -> AcceptedFrame:
        """The binary upload: the image bytes as the body, its fields from the query or headers."""
        await self._authorize_write(principal, meta)
        data = await read_limited(body, self._max_frame_bytes, "the frame")
        if not data:
            raise EmptyFrame("the body is empty: send the image bytes")
        return await self._accept(meta, data)

    async def _authorize_write(self, principal: Principal, meta: FrameMeta) -> None:
        driver_id = await self._access.require_session(
            principal, meta.session_id, "write", scope="video:write"
        )
        if driver_id != meta.driver_id:
            raise NotFound("session not found")

    async def _accept(self, meta: FrameMeta, data: bytes) -> AcceptedFrame:
        image = await asyncio.to_thread(check_image, data, self._pixel_limits)
        async with self._pool.acquire() as conn:  # one connection for the look-up and the insert
            existing = await store.frame_by_sha(conn, meta.session_id, image.sha256)
            if existing is not None:
                return AcceptedFrame(Frame.from_row(existing), duplicate=True)
            key = frame_key(meta.session_id, meta.timestamp, image.sha256, image.extension)
            await self._frames.put(key, data)
            try:
                row = await self._insert(conn, meta, image, len(data), key)
            except BaseException:
                await asyncio.shield(self._frames.delete(key))
                raise
            if row is None:
                # An identical upload won the race; keep its file (same key unless it fell in another hour).
                existing = await store.frame_by_sha(conn, meta.session_id, image.sha256)
                if existing is None:  # pruned in between: rare enough to hand back to the client
                    await self._frames.delete(key)
                    raise FrameChangedRetry("the frame changed while it was being stored; send it again")
                if existing["path"] != key:
                    await self._frames.delete(key)
                return AcceptedFrame(Frame.from_row(existing), duplicate=True)
        frame = Frame.from_row(row)
        self._publisher.publish(video_channel(frame.driver_id), frame_message(frame, data))
        return AcceptedFrame(frame, duplicate=False)

    async def _insert(
        self, conn: Connection, meta: FrameMeta, image: CheckedImage, size: int, key: str
    ) -> asyncpg.Record | None:
        try:
            return await store.insert_frame(
                conn,
                meta.session_id,
                meta.driver_id,
                meta.timestamp,
                image.content_type,
                size,
                image.width,
                image.height,
                image.sha256,
                key,
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound("session not found") from None  # deleted while the frame was being checked

    # -- reading -----------------------------------------------------------------------------------------

    async def frame(self, principal: Principal, frame_id: uuid.UUID) -> Frame:
        """One frame's metadata, when the caller may read its session; NotFound otherwise."""
        row = await store.frame_by_id(self._pool, frame_id)
        if row is None:
            raise NotFound("frame not found")
        try:
            await self._access.require_session(principal, row["session_id"], scope="video:read")
        except NotFound:
            raise NotFound("frame not found") from None
        return Frame.from_row(row)

    async def image_of(self, frame: Frame) -> bytes:
        """The image bytes of a frame (NotFound when pruned in the meantime)."""
        data = await self._frames.get(frame.path)
        if data is None:
            raise NotFound("frame not found")
        return data

    async def list_frames(
        self,
        principal: Principal,
        session_id: uuid.UUID,
        ts_from: datetime | None,
        ts_to: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> FramePage:
        """A page of a session's frames in time order, within [from, to), with `nextCursor`."""
        await self._access.require_session(principal, session_id, scope="video:read")
        after = FrameCursor.decode(cursor) if cursor else None
        rows = await store.frames_of_session(self._pool, session_id, ts_from, ts_to, after, limit + 1)
        page = [Frame.from_row(row) for row in rows[:limit]]
        next_cursor = FrameCursor(page[-1].timestamp, page[-1].id).encode() if len(rows) > limit else None
        return FramePage(frames=[VideoFrame.of(frame) for frame in page], next_cursor=next_cursor)

    async def nearest_frame(
        self,
        principal: Principal,
        session_id: uuid.UUID,
        at: datetime | None = None,
        session_time_s: float | None = None,
    ) -> NearestFrame:
        """The frame closest to a wall-clock time `at`, or to telemetry's `t` (seconds since the session started)."""
        await self._access.require_session(principal, session_id, scope="video:read")
        if (at is None) == (session_time_s is None):
            raise InvalidQuery("give exactly one of t (ISO-8601) and sessionTime (seconds)")
        if at is None:
            started = await store.session_started_at(self._pool, session_id)
            if started is None:
                raise NotFound("session not found")
            assert session_time_s is not None
            at = started + timedelta(seconds=session_time_s)
        elif at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        row = await store.nearest_frame(self._pool, session_id, at)
        if row is None:
            raise NoFrames("the session has no video frames")
        frame = Frame.from_row(row)
        offset_ms = round((frame.timestamp - at).total_seconds() * 1000, 3)
        return NearestFrame(**VideoFrame.fields_of(frame), requested_at=at, offset_ms=offset_ms)

    # -- retention ---------------------------------------------------------------------------------------

    async def prune_older_than(self, age: timedelta) -> int:
        """Delete frames stored more than `age` ago, rows and files together; return how many."""
        cutoff = datetime.now(UTC) - age
        deleted = 0
        while True:
            keys = await store.delete_frames_created_before(self._pool, cutoff, PRUNE_BATCH)
            for key in keys:
                await self._frames.delete(key)
            deleted += len(keys)
            if len(keys) < PRUNE_BATCH:
                break
        if deleted:
            log.info("video_pruned", frames=deleted, older_than_s=age.total_seconds())
        return deleted

    async def delete_session_files(self, session_ids: list[uuid.UUID]) -> None:
        """Remove deleted sessions' image files (their rows went with the sessions by ON DELETE CASCADE)."""
        for session_id in session_ids:
            await self._frames.delete_prefix(f"{session_id}/")

    async def start(self) -> None:
        """Start pruning, now and every hour, when a retention period was given; nothing otherwise."""
        await self._pruning.start()

    async def close(self) -> None:
        """Stop the automatic pruning."""
        await self._pruning.close()

    async def _prune_expired(self) -> None:
        if self._retention is not None:
            await self.prune_older_than(self._retention)


def frame_message(frame: Frame, data: bytes) -> dict[str, Any]:
    """The `video_frame` message on `video:<driverId>`: metadata and URL, plus `image` (base64) when small."""
    message: dict[str, Any] = {"type": "video_frame", "frame": VideoFrame.of(frame).wire()}
    if len(data) <= INLINE_IMAGE_BYTES:
        message["image"] = base64.b64encode(data).decode("ascii")
    return message
