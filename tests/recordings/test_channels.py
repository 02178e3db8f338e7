"""The canonical channel catalogue, its aliases, unit conversions and the doc that shows them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pitbox.errors import Invalid, NotFound
from pitbox.recordings import Recording, open_recording
from pitbox.telemetry.aliases import SampleMapper, canonical_name, to_canonical_channels
from pitbox.telemetry.catalogue import (
    CATALOGUE,
    convert_units,
    ms_to_kmh,
    percent_to_fraction,
    rad_per_s_to_rpm,
)
from pitbox.telemetry.channel_docs import alias_markdown_table, catalogue_markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "telemetry.md"


@pytest.mark.parametrize(
    ("raw", "source", "canonical"),
    [
        ("Speed", "iracing", "speed"),
        ("LFtempCM", "iracing", "tyreTempFL"),
        ("LapDistPct", None, "lapDistPct"),
        ("speed_Kmh", "assetto_corsa", "speed"),
        ("m_engineRPM", "f1", "rpm"),
        ("CurrentEngineRpm", "forza", "rpm"),
        ("Ground Speed", "motec", "speed"),
        ("G Force Lat", None, "gLat"),
        ("speed", None, "speed"),
    ],
)
def test_known_names_map_to_canonical_names(raw: str, source: str | None, canonical: str) -> None:
    assert canonical_name(raw, source) == canonical


def test_unknown_names_are_returned_unchanged() -> None:
    assert canonical_name("Wing Angle") == "Wing Angle"
    assert canonical_name("Speed", "motec-not-a-source") == "Speed"


def test_units_convert_through_the_table() -> None:
    assert ms_to_kmh(np.array([10.0]))[0] == pytest.approx(36.0)
    assert percent_to_fraction(np.array([50.0]))[0] == pytest.approx(0.5)
    assert rad_per_s_to_rpm(np.array([2 * np.pi]))[0] == pytest.approx(60.0)
    assert convert_units(np.array([2.0]), "bar", "kPa")[0] == pytest.approx(200.0)
    assert convert_units(np.array([212.0]), "°F", "°C")[0] == pytest.approx(100.0)
    assert convert_units(np.array([1.0]), "revs/min", "1/min")[0] == 1.0  # same unit, other spelling


def test_source_conventions_become_canonical() -> None:
    channels = to_canonical_channels(
        {"gear": np.array([0, 1, 2]), "clutch": np.array([1.0, 0.0]), "lastLap": np.array([0, 65150])},
        "assetto_corsa",
    )
    assert channels["gear"].tolist() == [-1, 0, 1]
    assert channels["clutch"].tolist() == [0.0, 1.0]
    assert np.isnan(channels["lastLapTime"][0]) and channels["lastLapTime"][1] == pytest.approx(65.15)


def test_the_first_of_several_aliases_wins_and_the_others_keep_their_names() -> None:
    channels = to_canonical_channels(
        {"Speed": np.array([1.0]), "Ground Speed": np.array([2.0])}, "motec", {"Speed": "km/h"}
    )
    assert channels["speed"].tolist() == [2.0] and channels["Speed"].tolist() == [1.0]


def test_one_sample_maps_onto_canonical_names_and_units() -> None:
    mapper = SampleMapper("forza")
    raw = {"Speed": 10.0, "Brake": 255, "LapNumber": 2, "TireTempFrontLeft": 212.0, "Mystery": 1.5}
    expected = {"speed": 36.0, "brake": 1.0, "lap": 2, "tyreTempFL": 100.0, "Mystery": 1.5}
    for _ in range(2):  # the second time through the kept plan
        sample = mapper.map(raw)
        assert sample == pytest.approx(expected) and list(sample) == list(expected)
        assert isinstance(sample["lap"], int) and isinstance(sample["brake"], float)
    # A value that converts to "none" (Forza's LastLap 0) or is not finite is left out, the rest kept.
    odd = mapper.map({**raw, "LastLap": 0.0, "Speed": float("inf"), "Mystery": float("nan")})
    assert odd == pytest.approx({"brake": 1.0, "lap": 2, "tyreTempFL": 100.0})
    assert mapper.map({**raw, "LapNumber": float("nan")}) == pytest.approx(
        {"speed": 36.0, "brake": 1.0, "tyreTempFL": 100.0, "Mystery": 1.5}
    )
    assert mapper.map({**raw, "LastLap": 65.25})["lastLapTime"] == 65.25
    assert mapper.map({}) == {}


def test_every_alias_points_into_the_catalogue() -> None:
    from pitbox.telemetry.aliases import ALIASES

    for source, table in ALIASES.items():
        for raw, (canonical, _unit) in table.items():
            assert canonical in CATALOGUE, (source, raw, canonical)


def test_the_doc_shows_the_catalogue_and_aliases_as_they_are() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert catalogue_markdown_table() in doc, "docs/telemetry.md catalogue table is stale: regenerate it"
    assert alias_markdown_table() in doc, "docs/telemetry.md alias table is stale: regenerate it"


def test_a_recording_needs_time_and_equal_lengths() -> None:
    with pytest.raises(Invalid):
        Recording(source="x", sample_rate_hz=1.0, channels={"speed": np.array([1.0])})
    with pytest.raises(Invalid):
        Recording(
            source="x", sample_rate_hz=1.0, channels={"t": np.array([0.0]), "speed": np.array([1.0, 2.0])}
        )


def test_unknown_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(Invalid, match="not a recording"):
        open_recording(path)
    with pytest.raises(NotFound):
        open_recording(tmp_path / "missing.ibt")
