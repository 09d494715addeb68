"""``tracker geofences``: areas markers enter and leave, imported from GeoJSON."""
from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from tracker.cli.common import EXIT_USAGE, CommandError, on_database, table
from tracker.settings import settings


def add_commands(commands) -> None:
    geofences = commands.add_parser("geofences", help="areas markers enter and leave").add_subparsers(
        title="geofences commands")
    load = geofences.add_parser("import", help="add every Feature of a GeoJSON file (all or none)")
    load.add_argument("file", help="a FeatureCollection or a Feature")
    load.set_defaults(run=_geofences_import)
    geofences.add_parser("list", help="list the geofences").set_defaults(run=_geofences_list)


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
            geofences.append(parse_feature(feature, max_vertices=settings.geofence_max_vertices))
        except BadGeofence as exc:
            raise CommandError(f"{args.file}: feature {number}: {exc}; nothing imported", EXIT_USAGE) from None
    try:
        ids = await on_database(lambda conn: geofence_store.add_many(conn, geofences))
    except geofence_store.GeofenceLimit as exc:
        raise CommandError(f"{args.file}: {exc}; nothing imported", EXIT_USAGE) from None
    print(f"imported {len(ids)} geofences (ids {ids[0]} to {ids[-1]})")
    return 0


async def _geofences_list(args: argparse.Namespace) -> int:
    from tracker.geofences import store as geofence_store

    _, geofences = await on_database(geofence_store.load)
    table(("id", "name", "kind", "speed limit", "markers"),
           [(str(g.geofence_id), g.name, f"circle {g.radius:g} m" if g.radius else g.geometry["type"],
             f"{g.speed_limit:g} m/s" if g.speed_limit is not None else "-", " ".join(g.markers) or "all")
            for g in geofences], "no geofences")
    return 0
