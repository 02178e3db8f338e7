"""MoTeC i2 .ld logs, read with struct and numpy from the format's public description.

Layout (little-endian), as documented by the MIT-licensed motec-i2 crate and other public readers:
the header starts with the marker 0x40, then pointers to the first channel description (0x08), to the data
(0x0C) and to the event block (0x24), then device, date, time, driver, vehicle and venue strings. Channel
descriptions form a linked list (prev, next, data pointer, sample count, counter, data type and size,
frequency in Hz, shift, mul, scale, decimal places, name, short name, unit). A raw value r means
(r / scale * 10**-dec_places + shift) * mul.

Channels are logged at different rates (here 1 to 100 Hz). They are put on one time base: by default the
rate most channels share (20 Hz for MoTeC's Sample1.ld), or the rate asked for. Continuous channels are
interpolated linearly; counters (lap number, gear, last lap time, integer channels) hold their last value;
lap-relative channels (lap distance, running lap time) are interpolated except across their reset.
"""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pitbox.recordings.errors import CorruptRecording, EmptyRecording
from pitbox.recordings.models import Recording
from pitbox.telemetry.aliases import canonical_name, to_canonical_channels
from pitbox.telemetry.catalogue import CATALOGUE, FloatArray, Resampling

LD_MARKER = 0x40
_HEADER = struct.Struct("<I4xII20xI24xHHHI8sHHI4x16s16x16s16x64s64s64x64s64x1024xI66x64s126x")
_CHANNEL = struct.Struct("<IIIIHHHHhhhh32s8s12s40x")
_EVENT = struct.Struct("<64s64s1024sH")
_VENUE = struct.Struct("<64s1034xH")  # name, pointer to the vehicle block
_VEHICLE = struct.Struct("<64s")  # its id (then weight, type, comment)
_MAX_CHANNELS = 4096

#: (data type, size in bytes) -> numpy dtype. Types 0, 3, 5 are integers, 7 floating point.
_DTYPES: dict[tuple[int, int], str] = {
    (0, 2): "<i2",
    (3, 2): "<i2",
    (5, 2): "<i2",
    (0, 4): "<i4",
    (3, 4): "<i4",
    (5, 4): "<i4",
    (7, 2): "<f2",
    (7, 4): "<f4",
    (7, 8): "<f8",
}


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1").strip()


def read_motec_ld(path: Path, sample_rate_hz: float | None = None) -> Recording:
    """The recording in a MoTeC .ld file, resampled onto one time base; a corrupt file raises `Invalid`."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise CorruptRecording(f"{path.name} is too short to be a MoTeC .ld log")
    header = _HEADER.unpack_from(data, 0)
    marker, meta_ptr, _data_ptr, event_ptr = header[0:4]
    if marker != LD_MARKER or not 0 < meta_ptr < len(data):
        raise CorruptRecording(f"{path.name} is not a MoTeC .ld log (no 0x40 marker)")
    device_type, date, time, driver, vehicle, venue, comment = (
        _text(header[i]) for i in (8, 12, 13, 14, 15, 16, 18)
    )

    raw, frequencies, units = _read_channels(data, meta_ptr, path.name)
    if not raw:
        raise EmptyRecording(f"{path.name} holds no channels")
    rate = float(sample_rate_hz) if sample_rate_hz else _most_common_rate(frequencies)
    duration = max(len(values) / frequencies[name] for name, values in raw.items())
    t = np.arange(int(round(duration * rate)), dtype=np.float64) / rate
    resampled: dict[str, npt.NDArray[Any]] = {
        name: _resample(values, frequencies[name], t, _resampling_of(name, values))
        for name, values in raw.items()
    }
    channels = to_canonical_channels(resampled, "motec", units)
    channels = {"t": t, **channels}

    metadata: dict[str, str | float | int] = {
        key: value
        for key, value in (
            ("date", date),
            ("time", time),
            ("driver", driver),
            ("device", device_type),
            ("comment", comment),
        )
        if value
    }
    if event_ptr > 0 and event_ptr + _EVENT.size <= len(data):
        event_name, session, _comment, venue_ptr = _EVENT.unpack_from(data, event_ptr)
        metadata.update({k: v for k, v in (("event", _text(event_name)), ("session", _text(session))) if v})
        # ACC's export leaves the header's venue or vehicle empty and names them in the event's blocks.
        block_venue, block_vehicle = _venue_and_vehicle(data, venue_ptr)
        venue, vehicle = venue or block_venue, vehicle or block_vehicle
    metadata["native_rates_hz"] = ",".join(str(rate) for rate in sorted(set(frequencies.values())))
    return Recording(
        source="motec",
        sample_rate_hz=rate,
        channels=channels,
        track=venue or None,
        car=vehicle or None,
        metadata=metadata,
    )


def _venue_and_vehicle(data: bytes, venue_ptr: int) -> tuple[str, str]:
    """The venue name and vehicle id the event's venue and vehicle blocks hold ("" where there is none)."""
    if not 0 < venue_ptr <= len(data) - _VENUE.size:
        return "", ""
    name, vehicle_ptr = _VENUE.unpack_from(data, venue_ptr)
    vehicle = ""
    if 0 < vehicle_ptr <= len(data) - _VEHICLE.size:
        vehicle = _text(_VEHICLE.unpack_from(data, vehicle_ptr)[0])
    return _text(name), vehicle


def _read_channels(
    data: bytes, first: int, file_name: str
) -> tuple[dict[str, FloatArray], dict[str, float], dict[str, str]]:
    raw: dict[str, FloatArray] = {}
    frequencies: dict[str, float] = {}
    units: dict[str, str] = {}
    address, seen = first, set[int]()
    while address:
        if address in seen or len(seen) >= _MAX_CHANNELS or address + _CHANNEL.size > len(data):
            raise CorruptRecording(f"{file_name}: broken channel list at offset {address}")
        seen.add(address)
        (
            _prev,
            following,
            data_ptr,
            count,
            _counter,
            kind,
            size,
            frequency,
            shift,
            mul,
            scale,
            decimals,
            name_raw,
            _short,
            unit_raw,
        ) = _CHANNEL.unpack_from(data, address)
        address = following
        dtype = _DTYPES.get((kind, size))
        if dtype is None or frequency <= 0 or count == 0:
            continue  # a channel we cannot decode is skipped rather than guessed at
        if data_ptr + count * size > len(data):
            raise CorruptRecording(f"{file_name}: channel data runs past the end of the file")
        values = np.frombuffer(data, dtype=dtype, count=count, offset=data_ptr).astype(np.float64)
        name = _text(name_raw) or f"channel@{data_ptr}"
        while name in raw:  # two channels with one name: keep both
            name += "'"
        raw[name] = (values / (scale or 1) * 10.0**-decimals + shift) * mul
        frequencies[name] = float(frequency)
        units[name] = _text(unit_raw)
    return raw, frequencies, units


def _most_common_rate(frequencies: dict[str, float]) -> float:
    counts = Counter(frequencies.values())
    return max(counts, key=lambda rate: (counts[rate], rate))


def _resampling_of(raw_name: str, values: FloatArray) -> Resampling:
    channel = CATALOGUE.get(canonical_name(raw_name, "motec"))
    if channel is not None:
        return channel.resampling
    return "step" if np.all(values == np.round(values)) else "continuous"


def _resample(values: FloatArray, frequency: float, t: FloatArray, kind: Resampling) -> FloatArray:
    times = np.arange(len(values), dtype=np.float64) / frequency
    if len(values) == 1:
        return np.full(len(t), values[0])
    before = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(values) - 1)
    if kind == "step":
        return values[before]
    result = np.interp(t, times, values)
    if kind == "wrapping":
        after = np.minimum(before + 1, len(values) - 1)
        resets = values[after] < values[before]
        result[resets] = values[before][resets]
    return result
