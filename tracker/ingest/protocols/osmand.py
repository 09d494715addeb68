"""The OsmAnd protocol, as Traccar Client speaks it.

Query or form mode: ``id``/``deviceid``, ``lat`` and ``lon`` (or ``location=lat,lon``),
``timestamp`` (epoch seconds, epoch milliseconds above 2^31 - 1, ISO 8601 or
``yyyy-MM-dd HH:mm:ss`` in UTC; missing means now), ``speed`` in knots, ``bearing`` or
``heading``, ``altitude``, ``accuracy``, ``batt`` (%). Of the other parameters only
those in ``QUERY_FLAGS`` and ``QUERY_ATTRIBUTES`` are kept, as attributes: the state of
the device (``charge``, ``ignition``, ``motion`` as true/false; ``power``, external power
in V), how far it went (``odometer``, ``distance``, m), how good the fix is (``hdop``,
``vdop``, ``pdop``, ``sat``, ``valid``) and what it reports (``alarm``, e.g. Traccar
Client's SOS, ``event``). Everything else is dropped: ``token`` (the device's secret), any
``password``, ``key`` or ``secret`` a user typed into the server URL, identifiers
(``driverUniqueId``), the cell towers and Wi-Fi access points around the phone (``cell``,
``wifi``), and free-form parameters.

JSON mode (Traccar Client 9 and later): ``{"device_id", "location": {"timestamp",
"coords": {...}, "is_moving", "odometer", "battery": {"level": 0..1, "is_charging"},
"activity": {"type"}, "extras": {}}}``; ``location`` may also be a list of such objects.
The attributes are ``is_moving``, ``odometer``, ``charge`` and ``activity``; ``extras``
holds whatever the user or another app configured, and is dropped.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from tracker.positions.model import InvalidPosition, format_time, parse_time
from tracker.ingest.protocols import allowed_attributes, flag, known, number

KNOT = 1852 / 3600  # m/s
SOURCE = "osmand"
#: Query parameters kept as attributes (as text, but for the flags).
QUERY_ATTRIBUTES = ("odometer", "distance", "hdop", "vdop", "pdop", "sat", "valid", "power", "alarm", "event")
#: Query parameters that are true/false.
QUERY_FLAGS = ("charge", "ignition", "motion")
#: What JSON mode keeps, under these names.
JSON_ATTRIBUTES = ("is_moving", "odometer", "charge", "activity")


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
    attributes = {name: flag(params[name]) for name in QUERY_FLAGS if params.get(name)}
    attributes.update(allowed_attributes(params, QUERY_ATTRIBUTES))
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
        "attributes": allowed_attributes(attributes, JSON_ATTRIBUTES) or None,
    }
