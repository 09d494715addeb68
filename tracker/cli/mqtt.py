"""``tracker mqtt-bridge``: OwnTracks over MQTT into ``gps.positions``."""
from __future__ import annotations

import argparse

from tracker.settings import settings


def add_commands(commands) -> None:
    bridge = commands.add_parser("mqtt-bridge", help="OwnTracks over MQTT into gps.positions (runs until stopped)")
    bridge.add_argument("--client-id", help="this bridge's MQTT client id, one per bridge (default: "
                                            "tracker-bridge-<host name>); its session keeps what it has not acknowledged")
    bridge.set_defaults(run=_mqtt_bridge)


async def _mqtt_bridge(args: argparse.Namespace) -> int:
    from tracker.ingest import mqtt_bridge

    return await mqtt_bridge.serve(settings, args.client_id)
