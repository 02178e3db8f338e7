"""Every real capture played into a running relay over loopback UDP ends up stored on the server: one stored
sample per packet that carries a car sample (counted here from the capture's own bytes), in sessions named
with the track and car the packets give."""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from asyncio.subprocess import PIPE
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pitbox.relay.capture import Datagram
from pitbox.relay.replayer import AcNames, play_capture
from tests.conftest import RunningServer, free_port, shared_data
from tests.relay.conftest import Driver, capture, eventually, feed, running_relay, settled


def _f1_id(payload: bytes) -> int:
    # header: u16 format, then u8 year in 2023+ (the packet id is byte 5 in 2022, byte 6 after)
    year = int.from_bytes(payload[:2], "little")
    return payload[5] if year == 2022 else payload[6]


def _forza_race_on(payload: bytes) -> bool:
    return len(payload) == 331 and struct.unpack_from("<i", payload)[0] == 1


def _pcars_driving(payload: bytes) -> bool:
    # v1 telemetry (1,367 B, type bits 0) while playing (game state 2 or 4) with a viewed car
    return len(payload) == 1367 and payload[2] & 3 == 0 and payload[3] & 15 in (2, 4) and payload[4] < 128


CAPTURES: list[tuple[str, str, str | None, Callable[[bytes], bool], dict[str, object]]] = [
    (
        "f1_24_udp/monza_time_trial_clip.raw",
        "f1",
        None,
        lambda p: int.from_bytes(p[:2], "little") == 2024 and _f1_id(p) == 6,
        {"sim": "F1 24", "trackName": "Monza", "trackLengthM": 5798.0},
    ),
    (
        "forza_motorsport/hakone_skyline_gtr_dash.raw",
        "forza",
        None,
        _forza_race_on,
        {"sim": "Forza Motorsport", "trackName": "track ordinal 1640", "car": "car ordinal 445"},
    ),
    (
        "dirt_rally_2/noorinbee_ridge_descent_r5_turbo_199s.raw",
        "codemasters",
        "DiRT Rally 2.0",
        lambda p: len(p) == 264,
        {"sim": "DiRT Rally 2.0"},
    ),
    (
        "udp_captures_vthinsel/DirtRallye.bin.raw",
        "codemasters",
        "DiRT Rally",
        lambda p: len(p) == 264,
        {"sim": "DiRT Rally"},
    ),
    (
        "udp_captures_vthinsel/pcars.bin.raw",
        "pcars",
        None,
        _pcars_driving,
        {
            "sim": "Project CARS",
            "trackName": "Dubai Autodrome",
            "trackConfig": "International",
            "car": "Audi A1 quattro",
        },
    ),
]


@pytest.mark.parametrize(
    ("relative", "source", "sim", "carries_sample", "expected"),
    CAPTURES,
    ids=lambda v: v if isinstance(v, str) and "/" in v else "",
)
async def test_every_car_sample_of_a_capture_is_stored_once(
    server: RunningServer,
    driver: Driver,
    tmp_path: Path,
    relative: str,
    source: str,
    sim: str | None,
    carries_sample: Callable[[bytes], bool],
    expected: dict[str, object],
) -> None:
    datagrams = capture(relative)
    want = sum(1 for d in datagrams if carries_sample(d.payload))
    async with running_relay(server, driver, source, tmp_path / "spool", sim=sim) as relay:
        await feed(relay, datagrams)
        await settled(relay, len(datagrams))
    sessions = await driver.sessions()
    assert len(sessions) == 1, sessions
    session = sessions[0]
    assert session["sampleCount"] == want
    assert session["status"] == "ended"
    for field, value in expected.items():
        if (
            field == "trackLengthM"
        ):  # one shared catalogue: another session's Monza within 1 % is the same track
            assert session[field] == pytest.approx(value, rel=0.01), session
        else:
            assert session[field] == value, (field, session)
    stored = await driver.stored(session["id"])
    t = stored["t"]
    assert len(t) == want
    assert all(b >= a for a, b in zip(t, t[1:], strict=False)), "t goes back"


def f1_24_player_telemetry(payload: bytes) -> tuple[int, float, float, int, int]:
    """(speed km/h, throttle, brake, gear, rpm) of the player's car in an F1 24 car telemetry packet, read here
    from the game's published layout: a 29-byte header (player car index at byte 27), then 60 bytes a car
    starting uint16 speed (km/h), float throttle, steer, brake, uint8 clutch, int8 gear, uint16 rpm."""
    car = payload[27]
    speed, throttle, _steer, brake, _clutch, gear, rpm = struct.unpack_from(
        "<HfffBbH", payload, 29 + car * 60
    )
    return speed, throttle, brake, gear, rpm


async def test_f1_values_are_stored_in_the_canonical_units_the_packets_give(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    """docs/telemetry.md: speed km/h, throttle and brake fractions 0..1, gear -1..8, rpm 1/min: F1 24 sends
    each in that unit, so every stored sample is the packet's own value (16 mantissa bits kept on disk)."""
    datagrams = capture("f1_24_udp/monza_time_trial_clip.raw")
    packets = [
        d.payload
        for d in datagrams
        if d.payload[:2] == (2024).to_bytes(2, "little") and _f1_id(d.payload) == 6
    ]
    expected = np.array([f1_24_player_telemetry(packet) for packet in packets], dtype=float)
    assert 250 < expected[:, 0].max() < 360, "a car at Monza: the test reads the layout right"
    async with running_relay(server, driver, "f1", tmp_path / "spool") as relay:
        await feed(relay, datagrams)
        await settled(relay, len(datagrams))
    (session,) = await driver.sessions()
    stored = await driver.stored(session["id"], channels="t,speed,throttle,brake,gear,rpm")
    assert len(stored["t"]) == len(packets)
    for column, name in enumerate(("speed", "throttle", "brake", "gear", "rpm")):
        np.testing.assert_allclose(
            np.array(stored[name], dtype=float), expected[:, column], rtol=2e-5, err_msg=name
        )
    assert min(stored["throttle"]) >= 0.0 and max(stored["throttle"]) <= 1.0
    assert set(stored["gear"]) <= set(range(-1, 9)) and max(stored["gear"]) >= 6
    # One known sample, the fastest: its speed in km/h is the packet's uint16 as it is.
    fastest = int(np.argmax(expected[:, 0]))
    assert stored["speed"][fastest] == expected[fastest, 0]


async def test_assetto_corsa_through_the_handshake_stores_every_packet_and_the_out_lap(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    datagrams = capture("udp_captures_vthinsel/AssettoCorsa_monza_A8LMS.raw")
    want = sum(1 for d in datagrams if len(d.payload) == 328 and d.payload[:1] == b"a")
    # The capture's lap count goes 0 -> 1 once: the out-lap from the pits completes at the line.
    crossings = sum(
        1
        for a, b in zip(datagrams, datagrams[1:], strict=False)
        if struct.unpack_from("<i", b.payload, 48)[0] > struct.unpack_from("<i", a.payload, 48)[0]
    )
    assert crossings == 1
    sim_address: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    names = AcNames(car="ks_audi_r8_lms", track="monza", config="")

    async def sim() -> int:
        return await play_capture(
            datagrams,
            source="ac",
            listen=("127.0.0.1", 0),
            speed=None,
            ac_names=names,
            on_listening=sim_address.set_result,
            may_send=lambda n: relay_ref[0].counts.datagrams >= n - 200 if relay_ref else False,
        )

    relay_ref: list = []
    sim_task = asyncio.create_task(sim())
    address = await sim_address
    async with running_relay(server, driver, "ac", tmp_path / "spool", connect=address) as relay:
        relay_ref.append(relay)
        sent = await sim_task
        assert sent == len(datagrams)
        await settled(relay, len(datagrams) + 1)  # + the handshake answer
    sessions = await driver.sessions()
    assert len(sessions) == 1
    session = sessions[0]
    # Tracks are one shared catalogue matched by name: another test may have created "Monza" first.
    assert (session["sim"], session["trackName"].lower(), session["car"]) == (
        "Assetto Corsa",
        "monza",
        "ks_audi_r8_lms",
    )
    assert session["sampleCount"] == want
    laps = await driver.reader.laps(session["id"])
    laps = laps["laps"] if isinstance(laps, dict) else laps
    assert len(laps) == crossings
    assert laps[0]["invalidReasons"] == ["started_mid_lap"]


async def test_an_ac_capture_replayed_without_names_makes_a_session_with_no_track_or_car(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    """`pitbox relay-replay ac` without --track/--car: a capture holds no handshake, so the replayed sim
    names nothing, and the session names no track (no "unknown track" in the shared catalogue)."""
    raw = shared_data("udp_captures_vthinsel/AssettoCorsa_monza_A8LMS.raw")
    port = free_port()
    command = ["relay-replay", str(raw), "--source", "ac", "--listen", f"127.0.0.1:{port}", "--speed", "20"]
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pitbox", *command, stdout=PIPE, stderr=PIPE
    )
    assert sim.stderr is not None
    assert b"waiting on" in await sim.stderr.readline()
    async with running_relay(server, driver, "ac", tmp_path / "spool", connect=("127.0.0.1", port)) as relay:
        out, err = await sim.communicate()
        assert sim.returncode == 0, err
        assert json.loads(out)["sent"] > 0
        await settled(relay, 1000)
    (session,) = await driver.sessions()
    assert (session["sim"], session["trackName"], session["trackId"], session["car"]) == (
        "Assetto Corsa",
        None,
        None,
        None,
    )
    tracks = await driver.reader.request("GET", "/api/tracks")
    assert not any("unknown" in track["name"] for track in tracks), tracks


async def test_f1_single_packets_of_three_games_make_a_session_each(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    folder = shared_data("f1_udp_single_packets")
    datagrams = [Datagram(0.0, path.read_bytes()) for path in sorted(folder.glob("*.bin"))]
    telemetry = [d for d in datagrams if _f1_id(d.payload) == 6]
    # The session packet (id 1) names the track: byte 7 after the header (24 bytes in 2022, 29 after).
    tracks = {0: "Melbourne", 3: "Sakhir (Bahrain)"}
    expected = []
    for d in datagrams:
        if _f1_id(d.payload) == 1:
            year = int.from_bytes(d.payload[:2], "little")
            header = 24 if year == 2022 else 29
            expected.append((f"F1 {year - 2000}", tracks[struct.unpack_from("<b", d.payload, header + 7)[0]]))
    async with running_relay(server, driver, "f1", tmp_path / "spool", start_when="packets") as relay:
        await feed(relay, datagrams)
        await settled(relay, len(datagrams))
    sessions = await driver.sessions()
    assert [(s["sim"], s["trackName"]) for s in sessions] == expected
    assert [s["sampleCount"] for s in sessions] == [1] * len(telemetry)
    assert all(s["car"] for s in sessions)


async def test_iracing_live_snapshot_is_one_sample_with_track_and_car(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    snapshot = shared_data("iracing_ibt/teamjorge/live_test_file.irsdkmem")
    async with running_relay(
        server, driver, "iracing", tmp_path / "spool", irsdk_file=snapshot, start_when="packets", listen=None
    ) as relay:
        await eventually(lambda: relay.counts.samples == 1, what="the snapshot read")
        await settled(relay, 1)
    sessions = await driver.sessions()
    assert len(sessions) == 1
    session = sessions[0]
    assert (session["sim"], session["trackName"], session["car"]) == (
        "iRacing",
        "Autodromo Nazionale Monza",
        "Mercedes-AMG W13 E Performance",
    )
    assert session["sampleCount"] == 1
    stored = await driver.stored(session["id"], "t,speed")
    assert stored["t"] == [0.0]
