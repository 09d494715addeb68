"""tracker: send positions, simulate markers, manage devices and the database.

Every failure ends with a one-line explanation on stderr and a non-zero exit code.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

import orjson

from tracker.position import MARKER_ID_PATTERN, InvalidPosition, format_time, parse_position
from tracker.sender import send_paced
from tracker.settings import settings

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class CommandError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return asyncio.run(args.run(args)) or 0
    except CommandError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("tracker: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracker", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands")

    send = commands.add_parser("send", help="send one position")
    send.add_argument("--marker", required=True, help="marker id")
    send.add_argument("--lat", required=True, type=float)
    send.add_argument("--lon", required=True, type=float)
    send.add_argument("--time", help="epoch seconds or milliseconds, or ISO 8601 (default: now)")
    for name, unit in (("speed", "m/s"), ("heading", "degrees"), ("altitude", "m"),
                       ("accuracy", "m"), ("battery", "%")):
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

    replay = commands.add_parser("replay", help="send a recorded GPX track with its own timing")
    replay.add_argument("file", help="a GPX 1.0 or 1.1 file")
    replay.add_argument("--marker", help="marker id (default: the file's name)")
    replay.add_argument("--speedup", type=float, default=1.0, help="play X times faster")
    replay.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    replay.set_defaults(run=_replay)

    devices = commands.add_parser("devices", help="phones and trackers allowed to report over HTTP")
    device_commands = devices.add_subparsers(title="devices commands")
    add = device_commands.add_parser("add", help="register a device and print its secret (once)")
    add.add_argument("device_id", help="the device's marker id")
    add.add_argument("--name", default="", help="a name for people")
    add.set_defaults(run=_devices_add)
    listing = device_commands.add_parser("list", help="list the registered devices")
    listing.set_defaults(run=_devices_list)
    remove = device_commands.add_parser("remove", help="unregister a device")
    remove.add_argument("device_id")
    remove.set_defaults(run=_devices_remove)
    rotate = device_commands.add_parser("rotate", help="give a device a new secret and print it (once)")
    rotate.add_argument("device_id")
    rotate.set_defaults(run=_devices_rotate)

    db = commands.add_parser("db", help="database commands")
    db_commands = db.add_subparsers(title="db commands")
    init = db_commands.add_parser("init", help="create the schema if it does not exist")
    init.set_defaults(run=_db_init)
    return parser


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
    async with _producer() as producer:
        metadata = await producer.send_and_wait(
            settings.topic, key=args.marker.encode(), value=orjson.dumps(payload)
        )
    print(f"sent {args.marker} to {metadata.topic} partition {metadata.partition} offset {metadata.offset}")
    return 0


async def _simulate(args: argparse.Namespace) -> int:
    from tracker.simulate import Injection, records, spawn, utcnow

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
    async with _producer() as producer:
        sent, elapsed = await send_paced(producer, settings.topic, stream, "simulate", total)
    counts = ", ".join(f"{n} {kind}" for kind, n in injection.counts.items() if n or kind == "fresh")
    print(f"sent {sent} positions for {len(markers)} markers in {elapsed:.1f} s "
          f"({sent / max(elapsed, 1e-9):,.0f} positions/s): {counts}")
    return 0


async def _replay(args: argparse.Namespace) -> int:
    from tracker.replay import BadTrack, load
    from tracker.simulate import utcnow

    if args.speedup <= 0:
        raise CommandError("--speedup must be positive", EXIT_USAGE)
    marker_id = args.marker or Path(args.file).stem[:64]
    if not MARKER_ID_PATTERN.fullmatch(marker_id):
        raise CommandError(f"{marker_id!r} is not a marker id: pass --marker", EXIT_USAGE)
    try:
        points = load(Path(args.file))
    except BadTrack as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    start = utcnow()
    async with _producer() as producer:
        sent, elapsed = await send_paced(producer, settings.topic, replay_records(
            points, marker_id, args.speedup, start, args.loop), "replay",
            None if args.loop else len(points))
    print(f"replayed {sent} points of {args.file} as {marker_id} in {elapsed:.1f} s")
    return 0


def replay_records(points, marker_id: str, speedup: float, start, loop: bool):
    """(seconds after start, key, value) for each point, once or forever."""
    from tracker.geo import bearing_degrees, distance_m

    key = marker_id.encode()
    span = points[-1].offset.total_seconds() + 1.0  # one pass, and a second before the next
    passes = itertools.count() if loop else range(1)
    for lap in passes:
        previous = None
        for point in points:
            due = (lap * span + point.offset.total_seconds()) / speedup
            fix = {"marker_id": marker_id, "lat": point.lat, "lon": point.lon,
                   "time": format_time(start + timedelta(seconds=due)), "source": "replay"}
            if point.altitude is not None:
                fix["altitude"] = point.altitude
            if previous is not None:
                seconds = (point.offset - previous.offset).total_seconds()
                if seconds > 0:
                    fix["speed"] = round(distance_m(previous.lat, previous.lon, point.lat, point.lon) / seconds, 2)
                if (previous.lat, previous.lon) != (point.lat, point.lon):
                    fix["heading"] = round(bearing_degrees(previous.lat, previous.lon, point.lat, point.lon), 1)
            previous = point
            yield due, key, orjson.dumps(fix)


async def _db_init(args: argparse.Namespace) -> int:
    await _on_registry(lambda registry: asyncio.sleep(0))  # connecting creates the schema
    print("schema ready")
    return 0


async def _on_registry(action):
    """Run ``action(registry)``; device errors become one-line command errors."""
    import psycopg

    from tracker.devices import DeviceExists, Registry, UnknownDevice

    try:
        registry = await Registry.connect(settings.database_url)
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
        raise CommandError(f"cannot reach Postgres: {first_line}", EXIT_UNAVAILABLE) from None
    try:
        return await action(registry)
    except DeviceExists as exc:
        raise CommandError(f"device {exc.args[0]!r} exists already (rotate gives it a new secret)") from None
    except UnknownDevice as exc:
        raise CommandError(f"no device {exc.args[0]!r}") from None
    finally:
        await registry.close()


async def _devices_add(args: argparse.Namespace) -> int:
    if not MARKER_ID_PATTERN.fullmatch(args.device_id):
        raise CommandError("a device id is 1 to 64 characters of A-Z a-z 0-9 _ . : -", EXIT_USAGE)
    secret = await _on_registry(lambda registry: registry.add(args.device_id, args.name))
    print(f"device {args.device_id} added; its secret (shown only now): {secret}")
    return 0


async def _devices_rotate(args: argparse.Namespace) -> int:
    secret = await _on_registry(lambda registry: registry.rotate(args.device_id))
    print(f"device {args.device_id} has a new secret (shown only now; the old one stops working): {secret}")
    return 0


async def _devices_remove(args: argparse.Namespace) -> int:
    await _on_registry(lambda registry: registry.remove(args.device_id))
    print(f"device {args.device_id} removed")
    return 0


async def _devices_list(args: argparse.Namespace) -> int:
    devices = await _on_registry(lambda registry: registry.list())
    if not devices:
        print("no devices")
        return 0
    width = max(len(d.device_id) for d in devices)
    print(f"{'device':<{width}}  {'name':<20}  {'added':<20}  secret rotated")
    for d in devices:
        rotated = d.rotated_at.strftime("%Y-%m-%d %H:%M") if d.rotated_at else "never"
        print(f"{d.device_id:<{width}}  {d.name[:20]:<20}  {d.created_at:%Y-%m-%d %H:%M:%S}  {rotated}")
    return 0


def _cli_time(value: str | None) -> float | str:
    if value is None:
        return time.time()
    try:
        return float(value)
    except ValueError:
        return value


class _producer:
    """A started producer (topic created if missing), with a one-line error if Kafka is down."""

    async def __aenter__(self):
        from aiokafka.errors import KafkaError

        from tracker.kafka import ensure_topic, positions_producer

        self.producer = positions_producer(settings)
        try:
            await ensure_topic(settings, settings.topic)
            await self.producer.start()
        except KafkaError as exc:
            await self.producer.stop()
            raise CommandError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}", EXIT_UNAVAILABLE) from None
        return self.producer

    async def __aexit__(self, *exc_info) -> None:
        await self.producer.stop()


if __name__ == "__main__":
    sys.exit(main())
