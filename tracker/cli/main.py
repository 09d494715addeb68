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

from tracker.accounts.permissions import ROLES
from tracker.positions.model import MARKER_ID_PATTERN, MARKER_ID_RULE, InvalidPosition, format_time, parse_position
from tracker.cli import gateways as gateways_cli
from tracker.cli import journeys as journeys_cli
from tracker.ingest import mqtt_passwords
from tracker.cli.common import EXIT_UNAVAILABLE, EXIT_USAGE, CommandError
from tracker.cli.common import Producer as _producer
from tracker.cli.common import table as _table
from tracker.cli.common import first_line as _first_line
from tracker.cli.common import on_database as _on_database
from tracker.tracks.sender import send_paced
from tracker.settings import settings

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
    from tracker.tracks import importer
    importer.add_command(commands)

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

    _account_commands(commands)
    journeys_cli.add_commands(commands)
    gateways_cli.add_commands(commands)
    bridge = commands.add_parser("mqtt-bridge", help="OwnTracks over MQTT into gps.positions (runs until stopped)")
    bridge.add_argument("--client-id", help="this bridge's MQTT client id, one per bridge (default: "
                                            "tracker-bridge-<host name>); its session keeps what it has not acknowledged")
    bridge.set_defaults(run=_mqtt_bridge)

    db = commands.add_parser("db", help="database commands")
    db_commands = db.add_subparsers(title="db commands")
    init = db_commands.add_parser("init", help="create the schema if it does not exist")
    init.set_defaults(run=_db_init)
    _history_commands(commands)
    return parser


def _history_commands(commands):
    """``tracker history``: the subcommands on stored history; returns the group's
    subparsers, which each module fills with its own (``prune``: ``tracker.cli.retention``;
    ``delete``: ``tracker.storage.erase``)."""
    from tracker.storage import erase as erasure
    from tracker.cli import retention as retention_cli

    history = commands.add_parser("history", help="the history stored in Postgres").add_subparsers(
        title="history commands")
    retention_cli.add_commands(history)
    erasure.add_delete_command(history)
    return history


def _account_commands(commands) -> None:
    users = commands.add_parser("users", help="people who may read positions").add_subparsers(title="users commands")
    add = users.add_parser("add", help="add a user and print its generated password (once)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True,
                     help="admin: sees every marker and manages accounts; viewer: sees its groups' markers")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=_users_add)
    users.add_parser("list", help="list the users and their groups").set_defaults(run=_users_list)
    remove = users.add_parser("remove", help="remove a user (its tokens, sessions and links end)")
    remove.add_argument("name")
    remove.set_defaults(run=_account_change("remove_user", "name", done="user {name} removed"))
    passwd = users.add_parser("passwd", help="set a new password (printed once unless --password-stdin)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd.set_defaults(run=_users_passwd)

    groups = commands.add_parser("groups", help="sets of markers that viewers may see").add_subparsers(
        title="groups commands")
    add = groups.add_parser("add", help="add an empty group")
    add.add_argument("name")
    add.set_defaults(run=_account_change("add_group", "name", done="group {name} added"))
    groups.add_parser("list", help="list the groups, their markers and members").set_defaults(run=_groups_list)
    remove = groups.add_parser("remove", help="remove a group")
    remove.add_argument("name")
    remove.set_defaults(run=_account_change("remove_group", "name", done="group {name} removed"))
    for verb, helptext in (("grant", "add markers to a group"), ("revoke", "take markers out of a group")):
        grant = groups.add_parser(verb, help=f"{helptext}: marker ids, or prefixes ending in * (truck-*)")
        grant.add_argument("name")
        grant.add_argument("markers", nargs="+", metavar="MARKER_OR_PREFIX")
        grant.set_defaults(run=_groups_grant, verb=verb)
    members = groups.add_parser("members", help="add users to a group (or take them out with --remove)")
    members.add_argument("name")
    members.add_argument("users", nargs="+", metavar="USER")
    members.add_argument("--remove", action="store_true")
    members.set_defaults(run=_groups_members)
    friends = groups.add_parser("friends", help="let the group's phones see each other in OwnTracks "
                                                "(or stop it with --off)")
    friends.add_argument("name")
    friends.add_argument("--off", action="store_true")
    friends.set_defaults(run=_groups_friends)

    tokens = commands.add_parser("tokens", help="API tokens for programs").add_subparsers(title="tokens commands")
    add = tokens.add_parser("add", help="make a token for a user and print it (once)")
    add.add_argument("user")
    add.add_argument("--expires", help="lifetime: 3600, 90m, 12h, 30d (default: never)")
    add.set_defaults(run=_tokens_add)
    tokens.add_parser("list", help="list the tokens (never the tokens themselves)").set_defaults(run=_tokens_list)
    revoke = tokens.add_parser("revoke", help="stop a token from working")
    revoke.add_argument("token_id", type=int, metavar="ID")
    revoke.set_defaults(run=_account_change("revoke_token", "token_id", done="token {token_id} revoked"))

    geofences = commands.add_parser("geofences", help="areas markers enter and leave").add_subparsers(
        title="geofences commands")
    load = geofences.add_parser("import", help="add every Feature of a GeoJSON file (all or none)")
    load.add_argument("file", help="a FeatureCollection or a Feature")
    load.set_defaults(run=_geofences_import)
    geofences.add_parser("list", help="list the geofences").set_defaults(run=_geofences_list)

    webhooks = commands.add_parser("webhooks", help="URLs that events are POSTed to").add_subparsers(
        title="webhooks commands")
    add = webhooks.add_parser("add", help="add a webhook and print its signing secret (once)")
    add.add_argument("url", help="an http or https URL")
    add.add_argument("--type", dest="types", action="append", default=[], metavar="TYPE",
                     help="an event type it wants, such as geofence_enter (repeat for more; default every type)")
    add.add_argument("--marker", dest="markers", action="append", default=[], metavar="MARKER_OR_PREFIX",
                     help="a marker id, or a prefix ending in * (repeat for more; default every marker)")
    add.set_defaults(run=_webhooks_add)
    webhooks.add_parser("list", help="list the webhooks (never their secrets)").set_defaults(run=_webhooks_list)
    remove = webhooks.add_parser("remove", help="remove a webhook and its deliveries")
    remove.add_argument("webhook_id", type=int, metavar="ID")
    remove.set_defaults(run=_webhooks_remove)

    share = commands.add_parser("share", help="print a link that shows one marker without an account")
    share.add_argument("marker")
    share.add_argument("--hours", type=float, default=24.0, help="until the link expires (default 24, at most 720)")
    share.set_defaults(run=_share)
    shares = commands.add_parser("shares", help="share links").add_subparsers(title="shares commands")
    shares.add_parser("list", help="list the links").set_defaults(run=_shares_list)
    revoke = shares.add_parser("revoke", help="stop a link from working")
    revoke.add_argument("share_id", type=int, metavar="ID")
    revoke.set_defaults(run=_shares_revoke)


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
    async with _producer() as producer:
        sent, elapsed = await send_paced(producer, settings.topic, stream, "simulate", total)
    counts = ", ".join(f"{n} {kind}" for kind, n in injection.counts.items() if n or kind == "fresh")
    print(f"sent {sent} positions for {len(markers)} markers in {elapsed:.1f} s "
          f"({sent / max(elapsed, 1e-9):,.0f} positions/s): {counts}")
    return 0


async def _replay(args: argparse.Namespace) -> int:
    from tracker.tracks.replay import BadTrackFile, check, points
    from tracker.tracks.simulate import utcnow

    if args.speedup <= 0:
        raise CommandError("--speedup must be positive", EXIT_USAGE)
    marker_id = args.marker or Path(args.file).stem[:64]
    if not MARKER_ID_PATTERN.fullmatch(marker_id):
        raise CommandError(f"{marker_id!r} is not a marker id ({MARKER_ID_RULE}): pass --marker", EXIT_USAGE)
    try:
        track = check(Path(args.file))
        start = utcnow()
        async with _producer() as producer:
            sent, elapsed = await send_paced(producer, settings.topic, replay_records(
                lambda: points(track), marker_id, args.speedup, start, args.loop), "replay",
                None if args.loop else track.count)
    except BadTrackFile as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    print(f"replayed {sent} points of {args.file} as {marker_id} in {elapsed:.1f} s")
    return 0


def replay_records(laps, marker_id: str, speedup: float, start, loop: bool):
    """(seconds after start, key, value) for each point of ``laps()`` (the track's points,
    read again for each pass), once or forever; a pass starts a second after the last one's
    last point."""
    from tracker.tracks.derived_motion import derived_heading, derived_speed

    key = marker_id.encode()
    passes = itertools.count() if loop else range(1)
    lap_start = 0.0
    for _ in passes:
        previous = None
        offset = 0.0
        for point in laps():
            offset = point.offset.total_seconds()
            due = (lap_start + offset) / speedup
            fix = {"marker_id": marker_id, "lat": point.lat, "lon": point.lon,
                   "time": format_time(start + timedelta(seconds=due)), "source": "replay"}
            if point.altitude is not None:
                fix["altitude"] = point.altitude
            if previous is not None:
                speed = derived_speed(previous.lat, previous.lon, point.lat, point.lon,
                                      (point.offset - previous.offset).total_seconds())
                if speed is not None:
                    fix["speed"] = speed
                heading = derived_heading(previous.lat, previous.lon, point.lat, point.lon)
                if heading is not None:
                    fix["heading"] = heading
            previous = point
            yield due, key, orjson.dumps(fix)
        lap_start += offset + 1.0


async def _db_init(args: argparse.Namespace) -> int:
    await _on_registry(lambda registry: asyncio.sleep(0))  # connecting creates the schema
    print("schema ready")
    return 0


async def _on_registry(action):
    """Run ``action(registry)`` on the device registry."""
    from tracker.accounts.devices import Registry

    return await _on_database(lambda conn: action(Registry(conn)))


def _account_change(change: str, *fields: str, done: str):
    """A command that calls ``tracker.accounts.store.<change>(conn, *args.<fields>)`` and says ``done``."""
    async def run(args: argparse.Namespace) -> int:
        from tracker.accounts import store as accounts

        await _on_database(lambda conn: getattr(accounts, change)(conn, *(getattr(args, f) for f in fields)))
        print(done.format(**vars(args)))
        return 0

    return run


MIN_PASSWORD = 8


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated?): one line of standard input with --password-stdin, else a new one."""
    from tracker.accounts.credentials import new_password

    if not args.password_stdin:
        return new_password(), True
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise CommandError(f"the password must be at least {MIN_PASSWORD} characters", EXIT_USAGE)
    return password, False


async def _users_add(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    password, generated = _password(args)
    await _on_database(lambda conn: accounts.add_user(conn, args.name, args.role, password))
    print(f"user {args.name} ({args.role}) added" + (f"; password (shown only now): {password}" if generated else ""))
    return 0


async def _users_passwd(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    password, generated = _password(args)
    await _on_database(lambda conn: accounts.set_password(conn, args.name, password))
    print(f"user {args.name} has a new password" + (f" (shown only now): {password}" if generated else "")
          + "; its sessions have ended")
    return 0


async def _users_list(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    users = await _on_database(accounts.list_users)
    _table(("user", "role", "added", "groups"),
           [(u.name, u.role, f"{u.created_at:%Y-%m-%d %H:%M}", ", ".join(u.groups) or "-") for u in users],
           "no users: add the first admin with `tracker users add NAME --role admin`")
    return 0


async def _groups_grant(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts
    from tracker.accounts.permissions import parse_grant

    grants = [parse_grant(text) for text in args.markers]
    change = accounts.grant if args.verb == "grant" else accounts.revoke_grant
    await _on_database(lambda conn: change(conn, args.name, grants))
    print(f"group {args.name}: {'granted' if args.verb == 'grant' else 'revoked'} {' '.join(args.markers)}")
    return 0


async def _groups_members(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    change = accounts.remove_members if args.remove else accounts.add_members
    await _on_database(lambda conn: change(conn, args.name, args.users))
    print(f"group {args.name}: {'removed' if args.remove else 'added'} {' '.join(args.users)}")
    return 0


async def _groups_friends(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    await _on_database(lambda conn: accounts.set_friends(conn, args.name, not args.off))
    print(f"group {args.name}: its phones {'no longer see' if args.off else 'see'} each other in OwnTracks")
    return 0


async def _groups_list(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    groups = await _on_database(accounts.list_groups)
    _table(("group", "markers", "members", "friends"),
           [(g.name, " ".join(g.markers) or "-", ", ".join(g.members) or "-", "yes" if g.friends else "no")
            for g in groups], "no groups")
    return 0


async def _tokens_add(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    try:
        expires = None if args.expires is None else accounts.parse_duration(args.expires, longest=timedelta(days=3650))
    except accounts.AccountError as exc:
        raise CommandError(f"--expires: {exc}", EXIT_USAGE) from None
    token_id, token = await _on_database(lambda conn: accounts.add_token(conn, args.user, expires))
    lifetime = "never expires" if expires is None else f"expires in {args.expires}"
    print(f"token {token_id} for {args.user} ({lifetime}; shown only now): {token}")
    return 0


async def _tokens_list(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    tokens = await _on_database(accounts.list_tokens)
    _table(("id", "user", "made", "expires", "revoked"),
           [(str(t.token_id), t.user_name, f"{t.created_at:%Y-%m-%d %H:%M}",
             f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never",
             f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "-") for t in tokens], "no tokens")
    return 0


async def _share(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    if not 0 < args.hours <= 720:
        raise CommandError("--hours must be more than 0 and at most 720 (30 days)", EXIT_USAGE)
    share_id, token, expires_at = await _on_database(
        lambda conn: accounts.add_share(conn, args.marker, None, timedelta(hours=args.hours)))
    path = f"/s/{token}"
    where = f"{settings.public_url}{path}" if settings.public_url else f"{path} (on this tracker's address; set TRACKER_PUBLIC_URL for a full URL)"
    print(f"share {share_id} of {args.marker}, until {format_time(expires_at)} (shown only now): {where}")
    return 0


async def _shares_list(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    shares = await _on_database(lambda conn: accounts.list_shares(conn, None))
    _table(("id", "marker", "by", "expires", "revoked"),
           [(str(s.share_id), s.marker_id, s.created_by or "(command line)", f"{s.expires_at:%Y-%m-%d %H:%M}",
             f"{s.revoked_at:%Y-%m-%d %H:%M}" if s.revoked_at else "-") for s in shares], "no share links")
    return 0


async def _shares_revoke(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    await _on_database(lambda conn: accounts.revoke_share(conn, args.share_id, None))
    print(f"share {args.share_id} revoked")
    return 0


async def _geofences_import(args: argparse.Namespace) -> int:
    from tracker.geofences import store as geofence_store
    from tracker.geofences.model import BadGeofence, parse_feature

    try:
        document = orjson.loads(Path(args.file).read_bytes())
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}", EXIT_USAGE) from None
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"{args.file} is not JSON: {exc}", EXIT_USAGE) from None
    features = document.get("features") if isinstance(document, dict) and document.get("type") == "FeatureCollection" \
        else [document]
    if not isinstance(features, list) or not features:
        raise CommandError(f"{args.file} holds no Feature", EXIT_USAGE)
    geofences = []
    for number, feature in enumerate(features, 1):
        try:
            geofences.append(parse_feature(feature))
        except BadGeofence as exc:
            raise CommandError(f"{args.file}: feature {number}: {exc}; nothing imported", EXIT_USAGE) from None
    ids = await _on_database(lambda conn: geofence_store.add_many(conn, geofences))
    print(f"imported {len(ids)} geofences (ids {ids[0]} to {ids[-1]})")
    return 0


async def _geofences_list(args: argparse.Namespace) -> int:
    from tracker.geofences import store as geofence_store

    _, geofences = await _on_database(geofence_store.load)
    _table(("id", "name", "kind", "speed limit", "markers"),
           [(str(g.geofence_id), g.name, f"circle {g.radius:g} m" if g.radius else g.geometry["type"],
             f"{g.speed_limit:g} m/s" if g.speed_limit is not None else "-", " ".join(g.markers) or "all")
            for g in geofences], "no geofences")
    return 0


async def _webhooks_add(args: argparse.Namespace) -> int:
    from tracker.webhooks import store as webhook_store
    from tracker.webhooks.model import BadWebhook, parse_webhook

    try:
        new = parse_webhook({"url": args.url, "types": args.types, "markers": args.markers})
    except BadWebhook as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    webhook = await _on_database(lambda conn: webhook_store.add(conn, new, None))
    print(f"webhook {webhook.webhook_id} added ({', '.join(webhook.types) or 'every type'}; "
          f"{' '.join(webhook.markers) or 'every marker'}); its secret (shown only now): {webhook.secret}")
    return 0


async def _webhooks_list(args: argparse.Namespace) -> int:
    from tracker.webhooks import store as webhook_store

    webhooks = await _on_database(webhook_store.load)
    _table(("id", "url", "types", "markers", "by", "added"),
           [(str(w.webhook_id), w.url, " ".join(w.types) or "all", " ".join(w.markers) or "all",
             w.created_by or "(command line)", f"{w.created_at:%Y-%m-%d %H:%M}") for w in webhooks], "no webhooks")
    return 0


async def _webhooks_remove(args: argparse.Namespace) -> int:
    from tracker.webhooks import store as webhook_store

    try:
        await _on_database(lambda conn: webhook_store.delete(conn, args.webhook_id))
    except webhook_store.UnknownWebhook:
        raise CommandError(f"no webhook {args.webhook_id}") from None
    print(f"webhook {args.webhook_id} removed")
    return 0


async def _mqtt_bridge(args: argparse.Namespace) -> int:
    from tracker.ingest import mqtt_bridge

    return await mqtt_bridge.serve(settings, args.client_id)


async def _devices_add(args: argparse.Namespace) -> int:
    if not MARKER_ID_PATTERN.fullmatch(args.device_id):
        raise CommandError(f"a device id is {MARKER_ID_RULE}", EXIT_USAGE)
    mqtt_passwords.check_device_id(args.device_id)
    secret = await _on_registry(lambda registry: registry.add(args.device_id, args.name))
    mqtt = mqtt_passwords.set_password(args.device_id, secret)
    print(f"device {args.device_id} added{' (also as an MQTT user)' if mqtt else ''}; "
          f"its secret (shown only now): {secret}")
    return 0


async def _devices_rotate(args: argparse.Namespace) -> int:
    mqtt_passwords.check_device_id(args.device_id)
    secret = await _on_registry(lambda registry: registry.rotate(args.device_id))
    mqtt_passwords.set_password(args.device_id, secret)
    print(f"device {args.device_id} has a new secret (shown only now; the old one stops working): {secret}")
    return 0


async def _devices_remove(args: argparse.Namespace) -> int:
    await _on_registry(lambda registry: registry.remove(args.device_id))
    mqtt_passwords.remove(args.device_id)
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
