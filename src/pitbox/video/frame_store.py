"""Where frame images live. `FrameStore` is the whole interface (so an S3-compatible store can replace the
local one); `LocalFrameStore` keeps them under <data_dir>/video/<key>, written atomically."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from pathlib import Path
from typing import Protocol

from pitbox.atomic_files import write_atomically

# Keys are made by `frame_key` from a UUID, an hour and a hash; anything else is a bug, never a path.
_KEY = re.compile(r"^[0-9a-f-]{36}/\d{10}/[0-9a-f]{64}\.(jpg|png|webp)$")
_PREFIX = re.compile(r"^[0-9a-f-]{36}/$")


class FrameStore(Protocol):
    """Stores image bytes under a key; keys look like `<sessionId>/<yyyymmddHH>/<sha256>.<ext>`."""

    async def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` so that a reader sees all of it or nothing."""

    async def get(self, key: str) -> bytes | None:
        """The bytes under `key`, or None when there are none."""

    async def delete(self, key: str) -> None:
        """Remove `key`; one already gone is fine."""

    async def delete_prefix(self, prefix: str) -> None:
        """Remove every key under `prefix` (a session: `<sessionId>/`)."""


def _checked(pattern: re.Pattern[str], key: str) -> str:
    if not pattern.match(key):
        raise ValueError(f"not a frame store key: {key[:120]!r}")
    return key


class LocalFrameStore:
    """Frames as files under `<data_dir>/video/`; blocking file work runs in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "video"

    def path_of(self, key: str) -> Path:
        """The file of a key."""
        return self.root / _checked(_KEY, key)

    async def put(self, key: str, data: bytes) -> None:
        """Write via a temp file and a rename, so a reader never sees half a frame."""
        await asyncio.to_thread(write_atomically, self.path_of(key), data)

    async def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when it is missing."""
        try:
            return await asyncio.to_thread(self.path_of(key).read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        """Remove the file, then its hour folder and session folder when they are left empty."""
        await asyncio.to_thread(self._unlink, self.path_of(key))

    async def delete_prefix(self, prefix: str) -> None:
        """Remove a session's whole folder."""
        folder = self.root / _checked(_PREFIX, prefix)
        await asyncio.to_thread(shutil.rmtree, folder, True)

    def _unlink(self, target: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        for folder in (target.parent, target.parent.parent):
            # Another upload may be writing into the folder right now: then it is not empty, and that is fine.
            with contextlib.suppress(OSError):
                folder.rmdir()
