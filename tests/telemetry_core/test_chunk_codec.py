"""The chunk codec: exact round trips, missing values, and the size it reaches on real recordings."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from pitbox.errors import BadRequest, Invalid
from pitbox.telemetry.codec import ChunkCodec, rows_to_columns

from .conftest import Columns

STAMPS = ("14-46-23", "14-48-39", "14-50-46")


def chunks_of(columns: Columns, size: int = 600) -> list[Columns]:
    length = len(columns["t"])
    return [
        {name: values[start : start + size] for name, values in columns.items()}
        for start in range(0, length, size)
    ]


def test_real_chunks_round_trip_at_float32_precision_and_exact_time_and_position(
    langley: Callable[[str], Columns],
) -> None:
    codec = ChunkCodec()
    for chunk in chunks_of(langley("14-50-46")):
        payload, names = codec.encode(chunk)
        decoded = codec.decode(payload, names)
        assert sorted(names) == sorted(chunk)
        for name in names:
            if name in ("t", "lat", "lon"):
                assert np.array_equal(decoded[name], chunk[name]), name
            else:
                assert np.array_equal(decoded[name], chunk[name].astype(np.float32).astype(np.float64)), name


def test_every_channel_of_a_recording_round_trips(langley_all_channels: Columns) -> None:
    codec = ChunkCodec()
    for chunk in chunks_of(langley_all_channels, 500):
        payload, names = codec.encode(chunk)
        decoded = codec.decode(payload, names)
        for name in names:
            assert np.array_equal(decoded[name], chunk[name].astype(np.float32).astype(np.float64)) or (
                np.array_equal(decoded[name], chunk[name])
            ), name


def bytes_per_sample(recordings: list[Columns], codec: ChunkCodec) -> float:
    stored = samples = 0
    for columns in recordings:
        for chunk in chunks_of(columns):
            payload, _ = codec.encode(chunk)
            stored += len(payload)
            samples += len(chunk["t"])
    return stored / samples


def test_chunk_is_under_64_bytes_per_40_channel_sample_with_16_bit_mantissa(
    langley: Callable[[str], Columns],
) -> None:
    recordings = [{k: v for k, v in langley(stamp).items() if k != "LapLastLapTime"} for stamp in STAMPS]
    assert len(recordings[0]) == 40
    assert bytes_per_sample(recordings, ChunkCodec(mantissa_bits=16)) <= 64.0


def test_lossless_float32_chunk_is_under_96_bytes_per_40_channel_sample(
    langley: Callable[[str], Columns],
) -> None:
    recordings = [{k: v for k, v in langley(stamp).items() if k != "LapLastLapTime"} for stamp in STAMPS]
    assert bytes_per_sample(recordings, ChunkCodec()) <= 96.0


def test_rounded_mantissa_keeps_relative_error_and_full_precision_channels(
    langley: Callable[[str], Columns],
) -> None:
    codec = ChunkCodec(mantissa_bits=16)
    chunk = chunks_of(langley("14-46-23"))[2]
    decoded = codec.decode(*codec.encode(chunk))
    for name, values in chunk.items():
        error = np.abs(decoded[name] - values)
        assert np.all(error <= np.abs(values) * 2.0**-16), name
    for name in ("lapDistPct", "lapDist"):
        assert np.array_equal(decoded[name], chunk[name].astype(np.float32).astype(np.float64))
    assert np.array_equal(decoded["t"], chunk["t"])


def test_missing_values_round_trip() -> None:
    rows: list[dict[str, float | int | None]] = [
        {"t": 0.0, "speed": 100.5, "gear": 3},
        {"t": 0.1, "speed": None, "gear": 3, "boost": 1.25},
        {"t": 0.2, "gear": 4},
        {"t": 0.3, "speed": 102.25, "gear": None, "boost": None},
        {"t": 0.4, "speed": 103.0, "gear": 4, "ersMode": 2},
    ]
    codec = ChunkCodec()
    payload, names = codec.encode_rows(rows)
    decoded = codec.decode(payload, names)
    assert set(names) == {"t", "speed", "gear", "boost", "ersMode"}
    for index, row in enumerate(rows):
        for name in names:
            value = row.get(name)
            if value is None:
                assert np.isnan(decoded[name][index]), (name, index)
            else:
                assert decoded[name][index] == value, (name, index)


def test_channel_missing_everywhere_and_leading_gaps_round_trip() -> None:
    nan = float("nan")
    columns: dict[str, list[float | int | None]] = {
        "t": [1.0, 2.0, 3.0, 4.0],
        "nothing": [None, None, None, None],
        "late": [nan, nan, 7.5, 8.5],
        "lap": [None, 3, 3, 4],
    }
    codec = ChunkCodec()
    decoded = codec.decode(*codec.encode(columns))
    assert np.isnan(decoded["nothing"]).all()
    np.testing.assert_array_equal(decoded["late"], [nan, nan, 7.5, 8.5])
    np.testing.assert_array_equal(decoded["lap"], [nan, 3, 3, 4])


def test_integers_and_extreme_values_round_trip_exactly() -> None:
    rng = np.random.default_rng(7)
    columns = {
        "t": np.cumsum(rng.uniform(0.01, 0.02, 300)),
        "counter": rng.integers(-(2**52), 2**52, 300).astype(np.float64),
        "gear": rng.integers(-1, 8, 300).astype(np.float64),
        "huge": rng.uniform(-1e300, 1e300, 300),
        "tiny": rng.uniform(-1e-300, 1e-300, 300),
        "inf": np.where(rng.random(300) < 0.5, np.inf, -np.inf),
        "constant": np.full(300, 0.1),
    }
    codec = ChunkCodec()
    decoded = codec.decode(*codec.encode(columns))
    for name in ("t", "counter", "gear", "huge", "inf", "constant"):
        assert np.array_equal(decoded[name], columns[name]), name
    np.testing.assert_array_equal(decoded["tiny"], columns["tiny"].astype(np.float32).astype(np.float64))


def test_rows_with_the_same_channels_give_the_same_columns_as_column_input() -> None:
    rows = [{"t": i / 60, "speed": 100 + i * 0.5, "gear": 3} for i in range(120)]
    columns = rows_to_columns(rows)
    assert list(columns) == ["t", "speed", "gear"]
    np.testing.assert_array_equal(columns["speed"], [100 + i * 0.5 for i in range(120)])
    codec = ChunkCodec()
    assert codec.encode_rows(rows) == codec.encode(columns)


def test_a_value_that_is_not_a_number_is_invalid() -> None:
    with pytest.raises(Invalid):
        rows_to_columns([{"t": 0.0, "speed": "fast"}])  # type: ignore[dict-item]
    with pytest.raises(Invalid):
        ChunkCodec().encode({"t": [0.0, 1.0], "speed": [1.0]})


def test_corrupt_or_mismatched_payload_is_rejected() -> None:
    codec = ChunkCodec()
    payload, names = codec.encode({"t": [0.0, 0.5, 1.0], "speed": [10.0, 11.0, 12.5]})
    with pytest.raises(BadRequest):
        codec.decode(payload[:-4] + b"\0\0\0\0", names)
    with pytest.raises(BadRequest):
        codec.decode(payload, ["t"])
    with pytest.raises(BadRequest):
        codec.decode(b"\x01", names)


def test_empty_chunk_round_trips() -> None:
    codec = ChunkCodec()
    assert codec.decode(*codec.encode({})) == {}
    decoded = codec.decode(*codec.encode({"t": []}))
    assert decoded["t"].size == 0


def parts_of(recording: Columns) -> list[Columns]:
    """Four chunks' columns of different sizes (one of a single sample), with gaps in `speed`."""
    parts = []
    for start, stop in ((0, 600), (600, 660), (660, 1260), (1260, 1261)):
        columns = {name: values[start:stop].copy() for name, values in recording.items()}
        columns["speed"][::7] = np.nan
        parts.append(columns)
    return parts


def test_chunks_decoded_together_equal_chunks_decoded_one_by_one(langley: Callable[[str], Columns]) -> None:
    codec = ChunkCodec(mantissa_bits=16)
    chunks = []
    for columns in parts_of(langley("14-50-46")):
        payload, names = codec.encode(columns)
        chunks.append((payload, len(names)))
    together = codec.decode_matrices(chunks)
    for (payload, channels), matrix in zip(chunks, together, strict=True):
        np.testing.assert_array_equal(matrix, codec.decode_matrix(payload, channels))
        np.testing.assert_array_equal(matrix, codec.copy().decode_matrix(payload, channels))


def test_chunks_decoded_into_named_columns_equal_each_chunk_decoded_alone(
    langley: Callable[[str], Columns],
) -> None:
    codec = ChunkCodec(mantissa_bits=16)
    chunks = []
    for index, columns in enumerate(parts_of(langley("14-50-46"))):
        if index == 1:
            del columns["rpm"]  # a chunk without a channel
            columns["boost"] = np.full(columns["t"].size, np.nan)  # and one with a channel missing everywhere
        chunks.append(codec.encode(columns))
    names = ["t", "speed", "rpm", "boost", "gear", "nowhere"]
    matrix = codec.decode_columns(chunks, names)
    one_by_one = [codec.decode(payload, channels) for payload, channels in chunks]
    for row, name in enumerate(names):
        expected = np.concatenate([part.get(name, np.full(part["t"].size, np.nan)) for part in one_by_one])
        np.testing.assert_array_equal(matrix[row], expected, err_msg=name)
    # Into a slice of a larger matrix, as the decoding threads fill parts of one answer.
    larger = np.zeros((len(names), matrix.shape[1] + 10))
    codec.copy().decode_columns(chunks, names, larger[:, 5:-5])
    np.testing.assert_array_equal(larger[:, 5:-5], matrix)
    assert not larger[:, :5].any() and not larger[:, -5:].any()
