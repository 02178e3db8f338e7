"""iRacing .ibt telemetry files, read through pyirsdk."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import irsdk
import numpy as np
import numpy.typing as npt

from pitbox.recordings.errors import CorruptRecording, EmptyRecording
from pitbox.recordings.models import Recording
from pitbox.telemetry.aliases import to_canonical_channels

#: A valid .ibt starts with header version 1 or 2 and a tick rate such as 60 or 360.
_KNOWN_VERSIONS = (1, 2)


def read_ibt(path: Path) -> Recording:
    """The recording in an iRacing .ibt file; a corrupt or empty file raises `Invalid`."""
    ibt = irsdk.IBT()
    try:
        ibt.open(str(path))
    except (OSError, ValueError) as error:
        raise CorruptRecording(f"Cannot open {path.name} as an iRacing .ibt file: {error}") from error
    try:
        names: list[str] = list(ibt.var_headers_names or [])
        header = ibt._header  # pyirsdk exposes no public accessor for the header fields checked here
        version = int(header.version)
        tick_rate = int(header.tick_rate)
        if version not in _KNOWN_VERSIONS or not names or tick_rate <= 0:
            raise CorruptRecording(
                f"{path.name} is not a readable iRacing .ibt file (header version {version}, "
                f"{len(names)} variables): the file is corrupt or not telemetry",
            )
        try:
            raw = _all_variables(ibt, names)
        except struct.error as error:
            raise CorruptRecording(f"{path.name} is truncated: {error}") from error
        session_info = _session_info_text(ibt)
    finally:
        ibt.close()
    if "SessionTime" not in raw or len(raw["SessionTime"]) == 0:
        raise EmptyRecording(f"{path.name} holds no samples")
    channels = to_canonical_channels(raw, "iracing")
    t = np.asarray(channels["t"], dtype=np.float64)
    channels["t"] = t - t[0]
    metadata: dict[str, str | float | int] = {"session_time_at_start_s": float(t[0]), "ibt_version": version}
    return Recording(
        source="iracing",
        sample_rate_hz=float(tick_rate),
        channels=channels,
        track=_yaml_value(session_info, "TrackDisplayName") or _yaml_value(session_info, "TrackName"),
        track_config=_yaml_value(session_info, "TrackConfigName") or "",
        car=_driver_car(session_info),
        metadata=metadata,
    )


def _all_variables(ibt: irsdk.IBT, names: list[str]) -> dict[str, npt.NDArray[Any]]:
    raw: dict[str, npt.NDArray[Any]] = {}
    for name in names:
        values = ibt.get_all(name)
        if not values:
            continue
        if isinstance(values[0], list):
            # Array variables (e.g. 360 Hz sub-samples) become one channel per element: name[i].
            matrix = np.asarray(values)
            for index in range(matrix.shape[1]):
                raw[f"{name}[{index}]"] = _typed(matrix[:, index])
        else:
            raw[name] = _typed(np.asarray(values))
    return raw


def _typed(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if values.dtype == np.bool_:
        return values.astype(np.int64)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        return values.astype(np.float64)
    return values


def _session_info_text(ibt: irsdk.IBT) -> str:
    header = ibt._header
    start, length = int(header.session_info_offset), int(header.session_info_len)
    if start <= 0 or length <= 0:
        return ""
    data: bytes = ibt._shared_mem[start : start + length]
    return data.rstrip(b"\x00").decode("latin-1")


def _yaml_value(text: str, key: str) -> str | None:
    # A line scan avoids parsing iRacing's large, occasionally non-standard YAML for a few strings. The value
    # must be on the key's own line: an empty one (`TrackConfigName: `) is None, never the next line's.
    match = re.search(rf"^[ \t]*{re.escape(key)}:[ \t]*(.*?)[ \t]*$", text, flags=re.MULTILINE)
    if not match:
        return None
    return match.group(1).strip("'\"").strip() or None


def _driver_car(text: str) -> str | None:
    """The car of the driver who recorded the file: the `Drivers` entry whose CarIdx is DriverCarIdx."""
    own = _yaml_value(text, "DriverCarIdx")
    drivers = re.search(r"^[ \t]*Drivers:[ \t]*$", text, flags=re.MULTILINE)
    listing = text[drivers.end() :] if drivers else text
    # Only the Drivers list: results sections hold `- CarIdx:` entries too.
    entries = re.split(r"^[ \t]*- CarIdx:", listing, flags=re.MULTILINE)
    for entry in entries[1:]:
        index = entry.split("\n", 1)[0].strip()
        if own is None or index == own:
            return _yaml_value(entry, "CarScreenName")
    return _yaml_value(text, "CarScreenName")
