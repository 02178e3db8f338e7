"""What the relay does with bad input, a full spool, --record, --live, a foreign driver and bad options."""

from __future__ import annotations

import asyncio
import io
import math
import struct
from pathlib import Path

from typer.testing import CliRunner

from pitbox.cli import app
from pitbox.relay.capture import Datagram, read_capture
from pitbox.relay.sources.codemasters import CodemastersDecoder
from pitbox.relay.sources.f1 import F1Decoder
from pitbox.relay.sources.pcars import PCarsDecoder
from pitbox.relay.status import StatusLine
from tests.conftest import RunningServer, Team, World, free_port
from tests.relay.conftest import RELAY_SCOPES, Driver, capture, eventually, feed, running_relay, settled

FORZA = "forza_motorsport/hakone_skyline_gtr_dash.raw"


async def test_truncated_unknown_and_foreign_datagrams_are_counted_and_skipped(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    good = capture(FORZA)[:120]
    f1_packet = capture("f1_24_udp/monza_time_trial_clip.raw")[1].payload
    junk = [Datagram(0.0, b"\x01" * 100), Datagram(0.0, b"\x00" * 500), Datagram(0.0, f1_packet)]
    async with running_relay(server, driver, "forza", tmp_path / "spool") as relay:
        await feed(relay, [*junk, *good])
        await settled(relay, len(junk) + len(good))
        assert (relay.counts.truncated, relay.counts.foreign) == (1, 2)
    sessions = await driver.sessions()
    assert [s["sampleCount"] for s in sessions] == [len(good)]


def test_decoders_count_what_they_cannot_read() -> None:
    f1 = F1Decoder()
    header = struct.pack("<HBBBBBQfIIBB", 2024, 24, 1, 0, 1, 99, 1, 0.0, 0, 0, 0, 255)
    assert f1.decode(header) == []  # packet id 99
    assert (
        f1.decode(struct.pack("<HBBBBBQfIIBB", 2024, 24, 1, 0, 1, 6, 1, 0.0, 0, 0, 0, 255)) == []
    )  # no cars
    assert f1.decode(b"\x00" * 10) == []
    assert (f1.counts.unknown, f1.counts.truncated) == (1, 2)
    pcars = PCarsDecoder()
    assert pcars.decode(b"\xff" * 777) == []
    assert pcars.counts.foreign == 1


DIRT = "dirt_rally_2/noorinbee_ridge_descent_r5_turbo_199s.raw"
#: F1 2017's four floats after Codemasters' 66: session type, DRS allowed, track number (23: Texas Short),
#: FIA flag.
F1_2017_EXTRA = (1.0, 0.0, 23.0, 0.0)
TRACK_NUMBER, SPEED = 68, 7  # float indices in the packet


def f1_2017(payload: bytes, *, bad: tuple[int, float] | None = None) -> bytes:
    """A legacy Codemasters packet (66 floats) as F1 2017 sends it (70), with float `bad[0]` set to `bad[1]`."""
    values = [*struct.unpack("<66f", payload[:264]), *F1_2017_EXTRA]
    if bad is not None:
        values[bad[0]] = bad[1]
    return struct.pack("<70f", *values)


def test_an_f1_2017_packet_with_a_float_that_is_not_finite_is_foreign() -> None:
    packet = capture(DIRT)[600].payload
    decoder = CodemastersDecoder(sim="F1 2017")
    (sample,) = decoder.decode(f1_2017(packet))
    assert sample.info.track_name == "Texas Short"
    for index in range(70):  # every float: the four F1 2017 adds too (int(NaN) raised on the track number)
        for value in (math.nan, math.inf, -math.inf):
            assert decoder.decode(f1_2017(packet, bad=(index, value))) == [], (index, value)
    assert (decoder.counts.samples, decoder.counts.foreign) == (1, 70 * 3)


async def test_a_datagram_no_decoder_can_read_is_counted_foreign_and_the_relay_goes_on(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    good = [Datagram(0.0, f1_2017(d.payload)) for d in capture(DIRT)[:300]]
    bad = [
        Datagram(0.0, f1_2017(good[0].payload, bad=(TRACK_NUMBER, math.nan))),
        Datagram(0.0, f1_2017(good[0].payload, bad=(TRACK_NUMBER, math.inf))),
        Datagram(0.0, f1_2017(good[0].payload, bad=(SPEED, math.nan))),
    ]
    datagrams = [*good[:100], *bad, *good[100:200], *bad, *good[200:]]
    options = {"sim": "F1 2017", "start_when": "packets"}
    async with running_relay(server, driver, "codemasters", tmp_path / "spool", **options) as relay:
        # A relay that died reads no more: the feed would wait for it for ever.
        await asyncio.wait_for(feed(relay, datagrams), timeout=60)
        await settled(relay, len(datagrams))
        assert (relay.counts.samples, relay.counts.foreign) == (len(good), 2 * len(bad))
    sessions = await driver.sessions()
    assert [(s["sim"], s["trackName"], s["sampleCount"]) for s in sessions] == [
        ("F1 2017", "Texas Short", len(good))
    ]


async def test_record_keeps_the_datagrams_as_a_capture(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    datagrams = capture(FORZA)[:200]
    async with running_relay(
        server, driver, "forza", tmp_path / "spool", record=tmp_path / "rec" / "hakone"
    ) as relay:
        await feed(relay, datagrams)
        await settled(relay, len(datagrams))
    recorded = read_capture(tmp_path / "rec" / "hakone.raw")
    assert [d.payload for d in recorded] == [d.payload for d in datagrams]


async def test_live_sends_over_the_websocket(server: RunningServer, driver: Driver, tmp_path: Path) -> None:
    datagrams = capture(FORZA)[:300]
    async with running_relay(server, driver, "forza", tmp_path / "spool", live=True) as relay:
        await feed(relay, datagrams)
        await settled(relay, len(datagrams))
        assert relay.sender._socket is not None
    sessions = await driver.sessions()
    assert [s["sampleCount"] for s in sessions] == [len(datagrams)]


async def test_a_full_spool_drops_new_samples_and_says_so_even_when_quiet(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    datagrams = capture(FORZA)
    said = io.StringIO()
    nowhere = RunningServer(f"http://127.0.0.1:{free_port()}", "", server.services, server.settings)
    async with running_relay(
        nowhere, driver, "forza", tmp_path / "spool", spool_max_bytes=256 * 1024
    ) as relay:
        relay.status = StatusLine(quiet=True, stream=said)
        await feed(relay, datagrams)
        await eventually(lambda: relay.counts.datagrams == len(datagrams), what="all read")
        relay._flush()
        assert relay.spool.dropped > 0
        assert relay.spool.spooled_this_run + relay.spool.dropped == len(datagrams)
        assert "WARNING spool_full" in said.getvalue()
        relay.options.drain_s = 0.0


async def test_a_key_cannot_send_for_another_teams_driver(
    server: RunningServer, driver: Driver, world: World, other_team: Team, tmp_path: Path
) -> None:
    datagrams = capture(FORZA)[:60]
    foreign = other_team.driver.driver_id
    async with running_relay(server, driver, "forza", tmp_path / "spool", driver=foreign) as relay:
        relay.options.drain_s = 0.0
        await feed(relay, datagrams)
        await eventually(lambda: "404" in (relay.sender.stats.last_error or ""), what="refused")
        relay.spool.flush()
        assert relay.spool.backlog() == len(datagrams)  # kept, not lost
    key = await world.api_key(driver_id=foreign, scopes=RELAY_SCOPES)
    from pitbox.client import PitboxClient

    async with PitboxClient(server.url, token=key) as theirs:
        assert await theirs.sessions(str(foreign)) == []


def test_bad_options_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["relay", "nosuch", "--key", "pbk_x"])
    assert unknown.exit_code == 2 and "unknown source" in unknown.output
    both = runner.invoke(app, ["relay-replay", str(tmp_path / "x.raw"), "--source", "f1"])
    assert both.exit_code == 2 and "exactly one of" in both.output
    speed = runner.invoke(
        app,
        ["relay-replay", str(tmp_path / "x.raw"), "--source", "f1", "--to", "127.0.0.1:1", "--speed", "0"],
    )
    assert speed.exit_code == 2 and "--speed" in speed.output
    missing = runner.invoke(
        app, ["relay-replay", str(tmp_path / "x.raw"), "--source", "f1", "--to", "127.0.0.1:1"]
    )
    assert missing.exit_code == 1 and "timing.csv" in missing.output
    address = runner.invoke(app, ["relay", "f1", "--key", "pbk_x", "--listen", "nowhere"])
    assert address.exit_code == 2 and "HOST:PORT" in address.output


async def test_a_reset_keeps_the_session_and_idle_ends_it(
    server: RunningServer, driver: Driver, tmp_path: Path
) -> None:
    datagrams = capture(FORZA)
    async with running_relay(server, driver, "forza", tmp_path / "spool", idle_end_s=1.0) as relay:
        # A reset: the sim's clock goes back (the same stretch driven again). Same session, t goes on.
        await feed(relay, [*datagrams[:200], *datagrams[:100]])
        await settled(relay, 300)
        await eventually(lambda: relay.spool.sessions(("pending", "active")) == [], what="idle end")
        # After --idle-end seconds without packets the next packets open a new session.
        await feed(relay, datagrams[:50])
        await settled(relay, 350)
    sessions = await driver.sessions()
    assert [s["sampleCount"] for s in sessions] == [300, 50]
    t = (await driver.stored(sessions[0]["id"]))["t"]
    assert all(b >= a for a, b in zip(t, t[1:], strict=False))
