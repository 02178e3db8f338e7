"""`pitbox relay SOURCE …` and `pitbox relay-replay FILE …` (registered in pitbox.cli).

Options may also come from a TOML file (`--config relay.toml`), with the same names as the long options
(`server = "https://…"`, `idle-end = 60`, `live = true`); the command line wins over the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from pitbox.relay.sources import SOURCES

__all__ = ["relay", "relay_replay"]

SOURCE_HELP = "f1, codemasters, forza, ac, pcars or iracing"


def _address(text: str, flag: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        typer.echo(f"pitbox: {flag} must look like HOST:PORT, got {text!r}", err=True)
        raise typer.Exit(2)
    return host.strip("[]"), int(port)


def _config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        typer.echo(f"pitbox: cannot read {path}: {error}", err=True)
        raise typer.Exit(2) from None
    return {key.replace("-", "_"): value for key, value in values.items()}


def relay(
    source: Annotated[str, typer.Argument(help=SOURCE_HELP)],
    server: Annotated[str | None, typer.Option(help="PitBox server URL.")] = None,
    key: Annotated[
        str | None, typer.Option(help="API key pbk_… (or a token); default PITBOX_KEY.", envvar="PITBOX_KEY")
    ] = None,
    driver: Annotated[str | None, typer.Option(help="Driver id (default: the key's driver).")] = None,
    listen: Annotated[
        str | None, typer.Option(help="HOST:PORT to receive on (default 0.0.0.0:<sim port>).")
    ] = None,
    connect: Annotated[
        str | None, typer.Option(help="HOST:PORT of the sim, for ac (default 127.0.0.1:9996).")
    ] = None,
    spool: Annotated[Path | None, typer.Option(help="Spool directory (default ./relay-spool).")] = None,
    spool_max_mb: Annotated[float | None, typer.Option(help="Spool size bound in MB (default 1024).")] = None,
    idle_end: Annotated[
        float | None, typer.Option(help="End a session after this many seconds without packets (30).")
    ] = None,
    live: Annotated[
        bool | None, typer.Option("--live/--batched", help="Stream over the WebSocket (sub-second).")
    ] = None,
    batch_seconds: Annotated[float | None, typer.Option(help="Seconds of data a batch (1).")] = None,
    all_cars: Annotated[bool | None, typer.Option("--all-cars/--player-car", help="f1: every car.")] = None,
    record: Annotated[
        Path | None, typer.Option(help="Also keep the datagrams: FILE.raw + FILE.timing.csv.")
    ] = None,
    start_when: Annotated[str | None, typer.Option(help="moving (default) or packets.")] = None,
    pre_roll: Annotated[
        float | None, typer.Option(help="Seconds kept from before the car moves (60).")
    ] = None,
    sim: Annotated[
        str | None, typer.Option(help="codemasters: the game's name (DiRT Rally 2.0, F1 2017, …).")
    ] = None,
    irsdk_file: Annotated[Path | None, typer.Option(help="iracing: read a memory snapshot file.")] = None,
    quiet: Annotated[bool | None, typer.Option("--quiet", help="No status line.")] = None,
    log_json: Annotated[bool | None, typer.Option("--log-json", help="JSON lines on stderr.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file with any of these options.")] = None,
) -> None:
    """Stream live telemetry from a sim to a PitBox server, spooled on disk so nothing is lost."""
    from pitbox.relay.agent import Relay, RelayOptions

    given = {k: v for k, v in locals().items() if k not in ("config", "source", "Relay", "RelayOptions")}
    values = {**_config(config), **{k: v for k, v in given.items() if v is not None}}
    if source not in SOURCES:
        typer.echo(f"pitbox: unknown source {source!r}: use {SOURCE_HELP}", err=True)
        raise typer.Exit(2)
    if not values.get("key"):
        typer.echo("pitbox: give --key (or PITBOX_KEY, or key in --config)", err=True)
        raise typer.Exit(2)
    start = values.get("start_when", "moving")
    if start not in ("moving", "packets"):
        typer.echo(f"pitbox: --start-when is moving or packets, got {start!r}", err=True)
        raise typer.Exit(2)
    options = RelayOptions(
        source=source,
        server=str(values.get("server", "http://127.0.0.1:8080")),
        key=str(values["key"]),
        driver=values.get("driver"),
        listen=_address(values["listen"], "--listen") if values.get("listen") else None,
        connect=_address(values["connect"], "--connect") if values.get("connect") else None,
        spool_dir=Path(values.get("spool", "relay-spool")),
        spool_max_bytes=int(float(values.get("spool_max_mb", 1024)) * 1024 * 1024),
        idle_end_s=float(values.get("idle_end", 30.0)),
        live=bool(values.get("live", False)),
        batch_s=float(values.get("batch_seconds", 1.0)),
        all_cars=bool(values.get("all_cars", False)),
        record=Path(values["record"]) if values.get("record") else None,
        start_when=start,
        pre_roll_s=float(values.get("pre_roll", 60.0)),
        sim=values.get("sim"),
        irsdk_file=Path(values["irsdk_file"]) if values.get("irsdk_file") else None,
        quiet=bool(values.get("quiet", False)),
        log_json=bool(values.get("log_json", False)),
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        relay_agent = Relay(options)
        await relay_agent.run(stop)

    try:
        asyncio.run(main())
    except OSError as error:
        typer.echo(f"pitbox: {error}", err=True)
        raise typer.Exit(1) from None


def relay_replay(
    file: Annotated[Path, typer.Argument(help="A capture: FILE.raw with FILE.timing.csv beside it.")],
    source: Annotated[str, typer.Option(help=SOURCE_HELP)],
    to: Annotated[str | None, typer.Option(help="HOST:PORT to send to (a relay listening).")] = None,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT to wait on (ac: a relay connecting).")] = None,
    speed: Annotated[str, typer.Option(help="1 (as recorded), N times faster, or max.")] = "1",
    car: Annotated[str, typer.Option(help="ac: car name in the handshake (default: none).")] = "",
    track: Annotated[str, typer.Option(help="ac: track name in the handshake (default: none).")] = "",
    track_config: Annotated[str, typer.Option(help="ac: track configuration in the handshake.")] = "",
    driver_name: Annotated[str, typer.Option(help="ac: driver name in the handshake.")] = "PitBox replay",
) -> None:
    """Play a capture as the sim would, so anyone can try the relay without a sim."""
    from pitbox.errors import PitboxError
    from pitbox.relay.capture import read_capture
    from pitbox.relay.replayer import AcNames, play_capture

    if (to is None) == (listen is None):
        typer.echo("pitbox: give exactly one of --to HOST:PORT and --listen HOST:PORT", err=True)
        raise typer.Exit(2)
    if source not in SOURCES or not SOURCES[source].udp:
        typer.echo(
            f"pitbox: relay-replay plays UDP sources ({SOURCE_HELP.replace(' or iracing', '')})", err=True
        )
        raise typer.Exit(2)
    pace: float | None = None
    if speed != "max":
        try:
            pace = float(speed)
        except ValueError:
            pace = 0.0
        if not pace > 0:
            typer.echo(f"pitbox: --speed must be a positive number or max, got {speed!r}", err=True)
            raise typer.Exit(2)
    try:
        datagrams = read_capture(file)
    except PitboxError as error:
        typer.echo(f"pitbox: {error.message}", err=True)
        raise typer.Exit(1) from None

    def listening(address: tuple[str, int]) -> None:
        if listen is not None:
            typer.echo(f"relay-replay: waiting on {address[0]}:{address[1]}", err=True)

    sent = asyncio.run(
        play_capture(
            datagrams,
            source=source,
            to=_address(to, "--to") if to else None,
            listen=_address(listen, "--listen") if listen else None,
            speed=pace,
            ac_names=AcNames(car=car, driver=driver_name, track=track, config=track_config),
            on_listening=listening,
        )
    )
    sys.stdout.write(f'{{"sent": {sent}, "datagrams": {len(datagrams)}}}\n')
