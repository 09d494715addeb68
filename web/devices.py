"""The device registry over HTTP, for admins (what ``tracker devices`` does):

- ``GET /api/devices``: every device, with when the tracker last heard from it.
- ``POST /api/devices`` ``{"device_id", "name"}``: answers the device with its ``secret``
  (shown only now) and the settings a phone needs (``web.phone_settings``).
- ``GET`` and ``DELETE /api/devices/{device_id}``.
- ``POST /api/devices/{device_id}/rotate``: a new secret (shown only now); the old one stops.

The device's MQTT user follows its secret as on the command line
(``tracker.ingest.mqtt_passwords``). Each change is audited.
"""
from __future__ import annotations

from datetime import datetime, timezone

import orjson
from faust.web import View

from tracker.accounts.devices import Device, DeviceExists, Registry, UnknownDevice
from tracker.app import app
from tracker.cli.common import CommandError
from tracker.ingest import mqtt_passwords
from tracker.positions.model import MARKER_ID_PATTERN, MARKER_ID_RULE
from tracker.resources import live_hub
from web import params, phone_settings
from web.auth import require_admin
from web.errors import BadRequest, NotFound
from web.manage import Conflict, change, json_response, read, string_field

MAX_BODY = 4096
NAME_MAX = 200
SHAPE = '{"device_id": "phone-ann", "name": "Ann\'s phone"}'


def last_heard(device_id: str) -> str | None:
    """When the newest fix of the marker was taken, as this worker's live hub holds it."""
    value = live_hub.values.get(device_id)
    if value is None:
        return None
    return datetime.fromtimestamp(orjson.loads(value)[1] / 1e6, timezone.utc).isoformat().replace("+00:00", "Z")


def device_json(device: Device) -> dict:
    return {"device_id": device.device_id, "name": device.name, "created_at": device.created_at,
            "rotated_at": device.rotated_at, "last_fix_at": last_heard(device.device_id)}


def _unknown(device_id: str) -> NotFound:
    return NotFound("unknown_device", f"no device {device_id!r}")


def _check_id(device_id: str) -> str:
    if not MARKER_ID_PATTERN.fullmatch(device_id):
        raise BadRequest("bad_device_id", f"a device id is {MARKER_ID_RULE}", field="device_id")
    try:
        mqtt_passwords.check_device_id(device_id)
    except CommandError as exc:
        raise BadRequest("bad_device_id", str(exc), field="device_id") from None
    return device_id


async def _device(device_id: str) -> Device:
    devices = await read(lambda conn: Registry(conn).list())
    for device in devices:
        if device.device_id == device_id:
            return device
    raise _unknown(device_id)


def _with_secret(request, device: Device, secret: str) -> dict:
    return {**device_json(device), "secret": secret, "settings": phone_settings.for_device(request, device.device_id, secret)}


@app.page("/api/devices")
class Devices(View):
    async def get(self, request):
        await require_admin(request)
        devices = await read(lambda conn: Registry(conn).list())
        return json_response(self, [device_json(device) for device in devices])

    async def post(self, request):
        access = await require_admin(request)
        body = await params.json_object(request, MAX_BODY, SHAPE)
        device_id = _check_id(string_field(body, "device_id"))
        name = string_field(body, "name", required=False)
        if len(name) > NAME_MAX or not name.isprintable():
            raise BadRequest("bad_field", f"name is at most {NAME_MAX} printable characters", field="name")
        try:
            secret = await change(access, "device.add", f"device:{device_id}",
                                  lambda conn: Registry(conn).add(device_id, name), {"name": name})
        except DeviceExists:
            raise Conflict("device_exists", f"device {device_id!r} exists already (rotate gives it a new secret)") from None
        mqtt_passwords.set_password(device_id, secret)
        return json_response(self, _with_secret(request, await _device(device_id), secret), status=201)


@app.page("/api/devices/{device_id}")
class DeviceItem(View):
    async def get(self, request, device_id: str):
        await require_admin(request)
        return json_response(self, device_json(await _device(device_id)))

    async def delete(self, request, device_id: str):
        access = await require_admin(request)
        try:
            await change(access, "device.remove", f"device:{device_id}", lambda conn: Registry(conn).remove(device_id))
        except UnknownDevice:
            raise _unknown(device_id) from None
        mqtt_passwords.remove(device_id)
        return self.bytes(b"", status=204)


@app.page("/api/devices/{device_id}/rotate")
class DeviceRotate(View):
    async def post(self, request, device_id: str):
        access = await require_admin(request)
        await params.json_object(request, MAX_BODY, "{}")
        try:
            secret = await change(access, "device.rotate", f"device:{device_id}",
                                  lambda conn: Registry(conn).rotate(device_id))
        except UnknownDevice:
            raise _unknown(device_id) from None
        mqtt_passwords.set_password(device_id, secret)
        return json_response(self, _with_secret(request, await _device(device_id), secret))
