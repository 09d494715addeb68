"""The OsmAnd protocol, as Traccar Client speaks it.

Query or form mode: ``id``/``deviceid``, ``lat`` and ``lon`` (or ``location=lat,lon``),
``timestamp`` (epoch seconds, epoch milliseconds above 2^31 - 1, ISO 8601 or
``yyyy-MM-dd HH:mm:ss`` in UTC; missing means now), ``speed`` in knots, ``bearing`` or
``heading``, ``altitude``, ``accuracy``, ``batt`` (%), ``charge``; any other parameter is
kept as an attribute.

JSON mode (Traccar Client 9 and later): ``{"device_id", "location": {"timestamp",
"coords": {...}, "is_moving", "odometer", "battery": {"level": 0..1, "is_charging"},
"activity": {"type"}, "extras": {}}}``; ``location`` may also be a list of such objects.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from tracker.position import InvalidPosition, format_time, parse_time
from tracker.protocols import known, number, scalar_attributes

KNOT = 1852 / 3600  # m/s
SOURCE = "osmand"
QUERY_FIELDS = {"id", "deviceid", "lat", "lon", "location", "timestamp", "speed", "bearing",
                "heading", "altitude", "accuracy", "batt", "charge", "token"}


def from_query(params: Mapping[str, str], now: datetime) -> dict[str, Any]:
    marker_id = params.get("id") or params.get("deviceid")
    if not marker_id:
        raise InvalidPosition("missing_field", "id (or deviceid) is required")
    lat, lon = params.get("lat"), params.get("lon")
    if (lat is None or lon is None) and params.get("location"):
        lat, _, lon = params["location"].partition(",")
    if not lat or not lon:
        raise InvalidPosition("missing_field", "lat and lon (or location=lat,lon) are required")
    raw_time = params.get("timestamp")
    moment = now if not raw_time else parse_time(raw_time, now=now)
    speed = known(number(params.get("speed"), "speed"))
    attributes = scalar_attributes(params, QUERY_FIELDS)
    if params.get("charge"):
        attributes["charge"] = params["charge"].lower() in ("true", "1", "yes")
    return {
        "marker_id": marker_id,
        "lat": number(lat, "lat"),
        "lon": number(lon, "lon"),
        "time": format_time(moment),
        "speed": None if speed is None else speed * KNOT,
        "heading": known(number(params.get("bearing") or params.get("heading"), "bearing")),
        "altitude": number(params.get("altitude"), "altitude"),
        "accuracy": known(number(params.get("accuracy"), "accuracy")),
        "battery": known(number(params.get("batt"), "batt")),
        "source": SOURCE,
        "attributes": attributes or None,
    }


def from_json(body: Any, now: datetime) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise InvalidPosition("not_object", "expected a JSON object")
    marker_id = body.get("device_id")
    if not isinstance(marker_id, str) or not marker_id:
        raise InvalidPosition("missing_field", "device_id is required")
    locations = body.get("location")
    if isinstance(locations, dict):
        locations = [locations]
    if not isinstance(locations, list) or not locations:
        raise InvalidPosition("missing_field", "location is required")
    return [_json_location(marker_id, location, now) for location in locations]


def _json_location(marker_id: str, location: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(location, dict) or not isinstance(location.get("coords"), dict):
        raise InvalidPosition("missing_field", "location.coords is required")
    coords = location["coords"]
    raw_time = location.get("timestamp")
    moment = now if raw_time in (None, "") else parse_time(raw_time, now=now)
    battery = location.get("battery") if isinstance(location.get("battery"), dict) else {}
    level = known(number(battery.get("level"), "battery.level"))
    activity = location.get("activity") if isinstance(location.get("activity"), dict) else {}
    attributes = {
        key: value for key, value in (
            ("is_moving", location.get("is_moving")),
            ("odometer", location.get("odometer")),
            ("charge", battery.get("is_charging")),
            ("activity", activity.get("type")),
        ) if value is not None
    }
    extras = location.get("extras")
    if isinstance(extras, dict):
        attributes.update(scalar_attributes(extras, set(), prefix="extras."))
    return {
        "marker_id": marker_id,
        "lat": number(coords.get("latitude"), "coords.latitude"),
        "lon": number(coords.get("longitude"), "coords.longitude"),
        "time": format_time(moment),
        "speed": known(number(coords.get("speed"), "coords.speed")),
        "heading": known(number(coords.get("heading"), "coords.heading")),
        "altitude": number(coords.get("altitude"), "coords.altitude"),
        "accuracy": known(number(coords.get("accuracy"), "coords.accuracy")),
        "battery": None if level is None else level * 100,
        "source": SOURCE,
        "attributes": scalar_attributes(attributes, set()) or None,
    }
