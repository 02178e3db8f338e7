"""Readers for recorded telemetry files; each turns a file into a `Recording` with canonical channels.

`open_recording(path)` picks the reader from the file's content first and its extension second:
iRacing .ibt, MoTeC .ld, Assetto Corsa RTCarInfo UDP captures (.raw with a .timing.csv) and CSV.
"""

from __future__ import annotations

from pathlib import Path

from pitbox.errors import NotFound
from pitbox.recordings.assetto import looks_like_rt_car_info, read_assetto_corsa_capture
from pitbox.recordings.csvfile import read_csv, write_csv
from pitbox.recordings.errors import UnsupportedRecording
from pitbox.recordings.ibt import read_ibt
from pitbox.recordings.models import Recording, Sample
from pitbox.recordings.motec import LD_MARKER, read_motec_ld

__all__ = [
    "Recording",
    "Sample",
    "open_recording",
    "read_assetto_corsa_capture",
    "read_csv",
    "read_ibt",
    "read_motec_ld",
    "write_csv",
]


def open_recording(path: Path | str) -> Recording:
    """The recording in a file of any supported kind; an unknown or corrupt file raises `Invalid`."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"No recording file at {path}")
    with path.open("rb") as handle:
        head = handle.read(64)
    suffix = path.suffix.lower()
    if suffix == ".ibt":
        return read_ibt(path)
    if suffix == ".ld" or (len(head) >= 4 and int.from_bytes(head[:4], "little") == LD_MARKER):
        return read_motec_ld(path)
    if looks_like_rt_car_info(head):
        return read_assetto_corsa_capture(path)
    if suffix == ".csv" and not path.name.endswith(".timing.csv"):
        return read_csv(path)
    raise UnsupportedRecording(
        f"{path.name} is not a recording this service can read (.ibt, .ld, AC capture .raw, .csv)",
    )
