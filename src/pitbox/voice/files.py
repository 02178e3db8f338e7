"""Audio files of the voice cache under <data_dir>/voice/<key[:2]>/<key>.<ext>, written atomically."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pitbox.atomic_files import write_atomically


class AudioFiles:
    """Reads, writes and deletes cached audio; paths handed out are relative to the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir

    def relative_path(self, key: str, extension: str) -> str:
        """Where the audio for `key` lives, relative to the data directory."""
        return f"voice/{key[:2]}/{key}.{extension}"

    def absolute(self, relative: str) -> Path:
        """The absolute path of a relative audio path."""
        return self._data_dir / relative

    def write(self, relative: str, audio: bytes) -> None:
        """Write `audio` via a temp file and a rename, so a reader never sees half a file."""
        write_atomically(self.absolute(relative), audio)

    def read(self, relative: str, expected_bytes: int) -> bytes | None:
        """The file's bytes, or None when it is missing or not the size the cache row records."""
        try:
            audio = self.absolute(relative).read_bytes()
        except FileNotFoundError:
            return None
        return audio if len(audio) == expected_bytes else None

    def size(self, relative: str) -> int | None:
        """The file's size in bytes, or None when it is missing."""
        try:
            return self.absolute(relative).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, relative: str) -> None:
        """Remove a file; one already gone is fine."""
        with contextlib.suppress(FileNotFoundError):
            self.absolute(relative).unlink()
