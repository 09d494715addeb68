"""``tracker send``, ``tracker simulate`` and ``tracker replay``: positions sent to ``gps.positions`` as they happen."""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import orjson

from tracker.cli.common import EXIT_USAGE, CommandError
from tracker.positions.model import MARKER_ID_PATTERN, MARKER_ID_RULE, InvalidPosition, parse_position
from tracker.settings import settings
from tracker.stream.producer import started
from tracker.tracks import importer
from tracker.tracks.sender import send_paced


def add_commands(commands) -> None:
    send = commands.add_parser("send", help="send one position")
    send.add_argument("--marker", required=True, help="marker id")
    send.add_argument("--lat", required=True, type=float)
    send.add_argument("--lon", required=True, type=float)
    send.add_argument("--time", help="epoch seconds or milliseconds, or ISO 8601 (default: now)")
    for name, unit in (("speed", "m/s"), ("heading", "degrees"), ("altitude", "m"),
                       ("accuracy", "m"), ("battery", "%%")):
        send.add_argument(f"--{name}", type=float, help=unit)
    send.add_argument("--source", default="cli")
    send.set_defaults(run=_send)

    simulate = commands.add_parser("simulate", help="send moving positions for N markers")
    simulate.add_argument("--markers", type=int, default=10)
    simulate.add_argument("--rate", type=float, default=10.0, help="positions per second, all markers together")
    simulate.add_argument("--duration", type=float, default=60.0, help="seconds")
    simulate.add_argument("--area", default="48.8566,2.3522,5", help="LAT,LON,RADIUS_KM")
    simulate.add_argument("--seed", type=int, help="random seed, for repeatable runs")
    simulate.add_argument("--prefix", default="sim-", help="marker ids are PREFIX00000, PREFIX00001, ...")
    simulate.add_argument("--duplicates", type=float, default=0.0,
                          help="share of records that repeat an earlier record exactly (testing)")
    simulate.add_argument("--out-of-order", type=float, default=0.0,
                          help="share of records that are late fixes, older than the marker's last (testing)")
    simulate.set_defaults(run=_simulate)

    replay = commands.add_parser("replay", help="send a recorded track with its own timing")
    replay.add_argument("file", help="a track file of any format tracker import reads (GPX, GeoJSON, .rec, ...)")
    replay.add_argument("--marker", help="marker id (default: the file's name)")
    replay.add_argument("--speedup", type=float, default=1.0, help="play X times faster")
    replay.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    replay.set_defaults(run=_replay)
    importer.add_command(commands)


async def _send(args: argparse.Namespace) -> int:
    payload = {
        "marker_id": args.marker,
        "lat": args.lat,
        "lon": args.lon,
        "time": _cli_time(args.time),
        "speed": args.speed,
        "heading": args.heading,
        "altitude": args.altitude,
        "accuracy": args.accuracy,
        "battery": args.battery,
        "source": args.source,
    }
    payload = {key: value for key, value in payload.items() if value is not None}
    try:
        parse_position(payload)
    except InvalidPosition as exc:
        raise CommandError(f"invalid position: {exc.reason}", EXIT_USAGE) from None
    async with started(settings, settings.topic) as producer:
        metadata = await producer.send_and_wait(
            settings.topic, key=args.marker.encode(), value=orjson.dumps(payload)
        )
    print(f"sent {args.marker} to {metadata.topic} partition {metadata.partition} offset {metadata.offset}")
    return 0


async def _simulate(args: argparse.Namespace) -> int:
    from tracker.tracks.simulate import Injection, records, spawn, utcnow

    if args.markers < 1 or args.rate <= 0 or args.duration <= 0:
        raise CommandError("--markers, --rate and --duration must be positive", EXIT_USAGE)
    if not (0 <= args.duplicates <= 1 and 0 <= args.out_of_order <= 1 and args.duplicates + args.out_of_order <= 1):
        raise CommandError("--duplicates and --out-of-order are shares between 0 and 1", EXIT_USAGE)
    try:
        lat, lon, radius = (float(part) for part in args.area.split(","))
    except ValueError:
        raise CommandError(f"--area {args.area!r} is not LAT,LON,RADIUS_KM", EXIT_USAGE) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
        raise CommandError(f"--area {args.area!r} is outside the globe", EXIT_USAGE)
    rng = random.Random(args.seed)
    markers = spawn(args.markers, (lat, lon), radius, rng, prefix=args.prefix)
    total = int(args.rate * args.duration)
    injection = Injection(args.duplicates, args.out_of_order)
    stream = records(markers, args.rate, total, utcnow(), rng, injection)
    async with started(settings, settings.topic) as producer:
        sent, elapsed = await send_paced(producer, settings.topic, stream, "simulate", total)
    counts = ", ".join(f"{n} {kind}" for kind, n in injection.counts.items() if n or kind == "fresh")
    print(f"sent {sent} positions for {len(markers)} markers in {elapsed:.1f} s "
          f"({sent / max(elapsed, 1e-9):,.0f} positions/s): {counts}")
    return 0


async def _replay(args: argparse.Namespace) -> int:
    from tracker.tracks.replay import BadTrackFile, check, points, records
    from tracker.tracks.simulate import utcnow

    if args.speedup <= 0:
        raise CommandError("--speedup must be positive", EXIT_USAGE)
    marker_id = args.marker or Path(args.file).stem[:64]
    if not MARKER_ID_PATTERN.fullmatch(marker_id):
        raise CommandError(f"{marker_id!r} is not a marker id ({MARKER_ID_RULE}): pass --marker", EXIT_USAGE)
    try:
        track = check(Path(args.file))
        start = utcnow()
        async with started(settings, settings.topic) as producer:
            sent, elapsed = await send_paced(producer, settings.topic, records(
                lambda: points(track), marker_id, args.speedup, start, args.loop), "replay",
                None if args.loop else track.count)
    except BadTrackFile as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    print(f"replayed {sent} points of {args.file} as {marker_id} in {elapsed:.1f} s")
    return 0


def _cli_time(value: str | None) -> float | str:
    if value is None:
        return time.time()
    try:
        return float(value)
    except ValueError:
        return value
