"""Overland (iOS, and its Android port): many positions per request, a phone's queue flushed
in batches of up to a thousand.

``{"locations": [Feature, ...], "current": Feature?, "trip": {...}?}`` where each Feature is
GeoJSON: ``geometry.coordinates`` ``[lon, lat]``; ``properties.timestamp`` (ISO 8601 with
an offset), ``altitude`` (m), ``speed`` (m/s, -1 unknown), ``course`` (degrees, -1
unknown), ``horizontal_accuracy`` (m), ``battery_level`` (0..1), ``battery_state``
(``unknown``, ``charging``, ``full``, ``unplugged``), ``motion`` (a list: ``driving``,
``walking``, ``stationary``...) and ``device_id`` (what the user typed in the app, or
``""``). ``current``, sent when the queue holds more than two batches, is the newest point
and is kept too; ``trip`` is not.

The marker id is the device whose secret the request carries; for a gateway's token it is
each point's ``device_id``. Kept as attributes: ``charge`` (charging or full),
``battery_state`` and ``motion`` (its states joined by commas). Dropped: ``wifi`` (the name
of the network the phone is on), the app's settings (``pauses``, ``activity``,
``desired_accuracy``, ``deferred``, ``significant_change``, ``locations_in_payload``) and
anything else. A point without coordinates is a heartbeat.

The app deletes the points it sent only once the answer is ``{"result": "ok"}``.
"""
from __future__ import annotations

from typing import Any

from tracker.positions.model import InvalidPosition, format_time, parse_time
from tracker.ingest.protocols import allowed_attributes, heartbeat, known, missing, number

SOURCE = "overland"
#: The answer the app needs to let go of what it sent.
OK = {"result": "ok"}
ATTRIBUTES = ("charge", "battery_state", "motion")
MAX_MOTION_STATES = 8


def points(body: Any) -> list[Any]:
    """The request's points, ``current`` last; ``InvalidPosition`` if it has none."""
    if not isinstance(body, dict) or not isinstance(body.get("locations"), list):
        raise InvalidPosition("missing_field", 'expected {"locations": [GeoJSON Feature, ...]}')
    found = list(body["locations"])
    if isinstance(body.get("current"), dict):
        found.append(body["current"])
    return found


def device_of(point: Any) -> str | None:
    properties = point.get("properties") if isinstance(point, dict) else None
    device_id = properties.get("device_id") if isinstance(properties, dict) else None
    return device_id if isinstance(device_id, str) and device_id else None


def convert(point: Any, marker_id: str | None) -> dict[str, Any]:
    """One point as a ``gps.positions`` record (a heartbeat without coordinates), for
    ``marker_id`` (None: its own ``device_id``)."""
    if not isinstance(point, dict) or not isinstance(point.get("properties"), dict):
        raise InvalidPosition("not_object", "each location must be a GeoJSON Feature with properties")
    properties = point["properties"]
    marker_id = marker_id or device_of(point)
    if not marker_id:
        raise InvalidPosition("missing_field", "properties.device_id is required with a gateway's token")
    if missing(properties.get("timestamp")):
        raise InvalidPosition("missing_field", "properties.timestamp is required")
    time = format_time(parse_time(properties["timestamp"], max_future=None))
    level = known(number(properties.get("battery_level"), "battery_level"))
    battery = None if level is None else level * 100
    state = properties.get("battery_state")
    extras: dict[str, Any] = {"battery_state": state}
    if isinstance(state, str) and state in ("charging", "full", "unplugged"):
        extras["charge"] = state != "unplugged"
    motion = properties.get("motion")
    if isinstance(motion, list) and motion:
        extras["motion"] = ",".join(item for item in motion[:MAX_MOTION_STATES] if isinstance(item, str))
    attributes = allowed_attributes(extras, ATTRIBUTES) or None
    geometry = point.get("geometry")
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if not isinstance(coordinates, list) or len(coordinates) < 2 or missing(coordinates[0]) or missing(coordinates[1]):
        return heartbeat(marker_id, time, battery, SOURCE, attributes)
    return {
        "marker_id": marker_id,
        "lat": number(coordinates[1], "coordinates[1]"),
        "lon": number(coordinates[0], "coordinates[0]"),
        "time": time,
        "speed": known(number(properties.get("speed"), "speed")),
        "heading": known(number(properties.get("course"), "course")),
        "altitude": number(properties.get("altitude"), "altitude"),
        "accuracy": known(number(properties.get("horizontal_accuracy"), "horizontal_accuracy")),
        "battery": battery,
        "source": SOURCE,
        "attributes": attributes,
    }
