"""Writing a file so that a reader never sees half of it: a temp file in the same folder, then a rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(target: Path, data: bytes) -> None:
    """Write `data` to `target` via a temp file and `os.replace`, making the folder if needed."""
    for attempt in range(3):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
            break
        except FileNotFoundError:
            # A concurrent delete removed the folder after it was made (it looked empty): make it again.
            if attempt == 2:
                raise
    try:
        with os.fdopen(fd, "wb") as sink:
            sink.write(data)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
