"""``tracker devices``: the phones and trackers allowed to report, with their secrets (and MQTT passwords)."""
from __future__ import annotations

import argparse

from tracker.cli.common import EXIT_UNAVAILABLE, EXIT_USAGE, CommandError, on_database
from tracker.ingest import mqtt_passwords
from tracker.positions.model import MARKER_ID_PATTERN, MARKER_ID_RULE


def add_commands(commands) -> None:
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


async def _on_registry(action):
    """Run ``action(registry)`` on the device registry."""
    from tracker.accounts.devices import Registry

    return await on_database(lambda conn: action(Registry(conn)))


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
    cleared = await _clear_mqtt_friends(args.device_id)
    print(f"device {args.device_id} removed" + (f"; {cleared} friends cleared from the MQTT broker" if cleared else ""))
    return 0


async def _clear_mqtt_friends(device_id: str) -> int:
    """Remove the friends the MQTT broker retains under the device's name, where MQTT is in
    use (``TRACKER_MQTT_PASSWORD_FILE``): an id added again later must not inherit them."""
    import asyncio
    import os

    from tracker.ingest.mqtt_friends import clear_friends
    from tracker.settings import settings

    if not settings.mqtt_password_file:
        return 0
    try:
        return await asyncio.get_running_loop().run_in_executor(
            None, clear_friends, settings.mqtt_url, settings.mqtt_password, device_id, f"tracker-cli-{os.getpid()}")
    except (ConnectionError, OSError) as exc:
        raise CommandError(f"device {device_id} removed, but the friends the MQTT broker retains under its name "
                           f"could not be cleared ({exc})", EXIT_UNAVAILABLE) from None


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
