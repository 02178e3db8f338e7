"""Assetto Corsa remote-telemetry captures: RTCarInfo UDP packets (328 bytes each) laid end to end.

The packet is the public ACRemoteTelemetry `RTCarInfo` C struct with natural alignment: a char identifier
padded to 4 bytes, the size (328), three speeds, six bools padded to 4 bytes, then floats and ints; see
`RT_CAR_INFO` below. Arrays of four are per wheel (FL, FR, RL, RR) and become channels named `name[i]`.

A capture comes with `<stem>.timing.csv` (index, capture_clock, delta_s, length, raw_offset): packet i is
raw[raw_offset : raw_offset + length], received delta_s after the previous one. The packets carry no
clock of their own, so `t` is the running sum of delta_s and the capture cannot be read without that file.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pitbox.recordings.errors import CorruptRecording, EmptyRecording, MissingTiming
from pitbox.recordings.models import Recording
from pitbox.telemetry.aliases import to_canonical_channels

_WHEEL_ARRAYS = (
    "wheelAngularSpeed",
    "slipAngle",
    "slipAngle_ContactPatch",
    "slipRatio",
    "tyreSlip",
    "ndSlip",
    "load",
    "Dy",
    "Mz",
    "tyreDirtyLevel",
    "camberRAD",
    "tyreRadius",
    "tyreLoadedRadius",
    "suspensionHeight",
)
_FLAGS = ("isAbsEnabled", "isAbsInAction", "isTcInAction", "isTcEnabled", "isInPit", "isEngineLimiterOn")

RT_CAR_INFO = np.dtype(
    [
        ("identifier", "S1"),
        ("_pad0", "V3"),
        ("size", "<i4"),
        ("speed_Kmh", "<f4"),
        ("speed_Mph", "<f4"),
        ("speed_Ms", "<f4"),
        *[(flag, "u1") for flag in _FLAGS],
        ("_pad1", "V2"),
        ("accG_vertical", "<f4"),
        ("accG_horizontal", "<f4"),
        ("accG_frontal", "<f4"),
        ("lapTime", "<i4"),
        ("lastLap", "<i4"),
        ("bestLap", "<i4"),
        ("lapCount", "<i4"),
        ("gas", "<f4"),
        ("brake", "<f4"),
        ("clutch", "<f4"),
        ("engineRPM", "<f4"),
        ("steer", "<f4"),
        ("gear", "<i4"),
        ("cgHeight", "<f4"),
        *[(name, "<f4", (4,)) for name in _WHEEL_ARRAYS],
        ("carPositionNormalized", "<f4"),
        ("carSlope", "<f4"),
        ("carCoordinates", "<f4", (3,)),
    ]
)
PACKET_SIZE = RT_CAR_INFO.itemsize  # 328


def timing_file_of(path: Path) -> Path:
    """The `.timing.csv` that describes a capture: `name.raw` or `name.bin.raw` -> `name.timing.csv`."""
    stem = path.name.removesuffix(".raw").removesuffix(".bin")
    return path.with_name(f"{stem}.timing.csv")


def looks_like_rt_car_info(head: bytes) -> bool:
    """True when bytes start like an RTCarInfo packet (identifier 'a', size 328)."""
    return len(head) >= 8 and head[:1] == b"a" and int.from_bytes(head[4:8], "little") == PACKET_SIZE


def read_assetto_corsa_capture(path: Path, timing_path: Path | None = None) -> Recording:
    """The recording in an Assetto Corsa RTCarInfo UDP capture and its timing file."""
    timing_path = timing_path or timing_file_of(path)
    if not timing_path.is_file():
        raise MissingTiming(
            f"{path.name} needs its timing file {timing_path.name} (packets carry no clock)",
        )
    offsets, lengths, deltas = _read_timing(timing_path)
    data = path.read_bytes()
    if np.any(lengths != PACKET_SIZE) or np.any(offsets + lengths > len(data)):
        raise CorruptRecording(
            f"{path.name}: packets are not {PACKET_SIZE}-byte RTCarInfo or run past the file end",
        )
    packets = np.frombuffer(data, dtype=np.uint8)[offsets[:, None] + np.arange(PACKET_SIZE)]
    records = packets.copy().view(RT_CAR_INFO).reshape(-1)
    if np.any(records["size"] != PACKET_SIZE) or np.any(records["identifier"] != b"a"):
        raise CorruptRecording(f"{path.name} holds packets that are not RTCarInfo")

    raw: dict[str, npt.NDArray[Any]] = {}
    for name in RT_CAR_INFO.names or ():
        if name.startswith("_") or name == "identifier":
            continue
        column = records[name]
        if column.ndim == 2:
            for index in range(column.shape[1]):
                raw[f"{name}[{index}]"] = column[:, index].astype(np.float64)
        elif column.dtype.kind in "iu":
            raw[name] = column.astype(np.int64)
        else:
            raw[name] = column.astype(np.float64)
    t = np.cumsum(deltas) - deltas[0]
    channels = {"t": t, **to_canonical_channels(raw, "assetto_corsa")}
    intervals = np.diff(t)
    rate = 1.0 / float(np.mean(intervals)) if len(intervals) and t[-1] > 0 else 0.0
    return Recording(
        source="assetto_corsa", sample_rate_hz=rate, channels=channels, metadata={"packets": len(records)}
    )


def _read_timing(path: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        offsets = np.array([int(row["raw_offset"]) for row in rows], dtype=np.int64)
        lengths = np.array([int(row["length"]) for row in rows], dtype=np.int64)
        deltas = np.array([float(row["delta_s"]) for row in rows], dtype=np.float64)
    except (KeyError, ValueError) as error:
        raise CorruptRecording(f"{path.name} is not a capture timing file: {error}") from error
    if len(rows) == 0:
        raise EmptyRecording(f"{path.name} lists no packets")
    return offsets, lengths, deltas
