"""The OsmAnd protocol, as Traccar Client speaks it.

Query or form mode (Traccar Client up to 8, and 10 by default: one position per request,
as a form body): ``id``/``deviceid``, ``lat`` and ``lon`` (or ``location=lat,lon``),
``timestamp`` (epoch seconds, epoch milliseconds above 2^31 - 1, ISO 8601 or
``yyyy-MM-dd HH:mm:ss`` in UTC; missing means now), ``speed`` in knots, ``bearing`` or
``heading``, ``altitude``, ``accuracy``, ``batt`` (%). Of the other parameters only
those in ``QUERY_FLAGS`` and ``QUERY_ATTRIBUTES`` are kept, as attributes: the state of
the device (``charge``, ``ignition``, ``motion`` as true/false; ``power``, external power
in V; ``battery_health``, ``battery_voltage``, ``battery_temp`` as Traccar Client 10 reports
them), how far it went (``odometer``, ``distance``, m), how good the fix is (``hdop``,
``vdop``, ``pdop``, ``sat``, ``valid``) and what it reports (``alarm``, e.g. Traccar
Client's SOS, ``event``). Everything else is dropped: ``token`` (the device's secret), any
``password``, ``key`` or ``secret`` a user typed into the server URL, identifiers
(``imei``, ``driverUniqueId``), the cell towers and Wi-Fi access points around the phone
(``cell``, ``wifi``), and the custom attributes a user configured.

Without ``lat`` and ``lon`` (a phone standing still sends only ``id``, ``timestamp``,
``batt`` and ``charge``; another knows only its cell towers and Wi-Fi networks) the request
is a heartbeat (``tracker.ingest.protocols.heartbeat``), not a position.

JSON mode, Traccar Client 10 (its "JSON" option): a JSON array of flat objects with the
query mode's names and JSON values (``lat`` a number, ``charge`` true/false, ``timestamp``
epoch seconds), one per queued position, oldest first; ``from_json`` checks each apart.

JSON mode, Traccar Client 9: ``{"device_id", "location": {"timestamp", "coords": {...},
"is_moving", "odometer", "battery": {"level": 0..1, "is_charging"}, "activity": {"type"},
"extras": {}}}``; ``location`` may also be a list of such objects. The attributes are
``is_moving``, ``odometer``, ``charge`` and ``activity``; ``extras`` holds whatever the user
or another app configured, and is dropped.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from tracker.positions.model import InvalidPosition, format_time, parse_time
from tracker.ingest.protocols import (Converted, allowed_attributes, each, flag, heartbeat, known, missing, number,
                                     report_time)

KNOT = 1852 / 3600  # m/s
SOURCE = "osmand"
#: Query parameters kept as attributes (as text, but for the flags).
QUERY_ATTRIBUTES = ("odometer", "distance", "hdop", "vdop", "pdop", "sat", "valid", "power", "alarm", "event",
                    "battery_health", "battery_voltage", "battery_temp")
#: Query parameters that are true/false.
QUERY_FLAGS = ("charge", "ignition", "motion")
#: What JSON mode keeps, under these names.
JSON_ATTRIBUTES = ("is_moving", "odometer", "charge", "activity")


def device_of(params: Mapping[str, Any]) -> str | None:
    """The device id a request names: ``id``, else ``deviceid``."""
    marker_id = params.get("id") or params.get("deviceid")
    return marker_id if isinstance(marker_id, str) and marker_id else None


def from_query(params: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """One report of query or form mode (text values), or one object of Traccar Client 10's
    JSON array (JSON values): a position, or a heartbeat when it has no coordinates."""
    marker_id = device_of(params)
    if not marker_id:
        raise InvalidPosition("missing_field", "id (or deviceid) is required")
    lat, lon = params.get("lat"), params.get("lon")
    if (missing(lat) or missing(lon)) and isinstance(params.get("location"), str) and params["location"]:
        lat, _, lon = params["location"].partition(",")
    moment = report_time(params.get("timestamp"), now)
    attributes = {name: flag(params[name]) for name in QUERY_FLAGS if not missing(params.get(name))}
    attributes.update(allowed_attributes(params, QUERY_ATTRIBUTES))
    battery = known(number(params.get("batt"), "batt"))
    if missing(lat) or missing(lon):
        return heartbeat(marker_id, moment, battery, SOURCE, attributes)
    speed = known(number(params.get("speed"), "speed"))
    return {
        "marker_id": marker_id,
        "lat": number(lat, "lat"),
        "lon": number(lon, "lon"),
        "time": moment,
        "speed": None if speed is None else speed * KNOT,
        "heading": known(number(params.get("bearing") or params.get("heading"), "bearing")),
        "altitude": number(params.get("altitude"), "altitude"),
        "accuracy": known(number(params.get("accuracy"), "accuracy")),
        "battery": battery,
        "source": SOURCE,
        "attributes": attributes or None,
    }


def claimed_device(body: Any) -> str | None:
    """The device id a JSON body names: Traccar Client 10's first object's ``id``, or
    Traccar Client 9's ``device_id``."""
    if isinstance(body, list):
        return device_of(body[0]) if body and isinstance(body[0], dict) else None
    if isinstance(body, dict):
        marker_id = body.get("device_id") if "device_id" in body else device_of(body)
        return marker_id if isinstance(marker_id, str) and marker_id else None
    return None


def from_json(body: Any, now: datetime) -> Converted:
    """A JSON body: (each element as sent, the position or heartbeat it is, or why it cannot
    be one); ``InvalidPosition`` for a body that holds none."""
    if isinstance(body, list):
        return [(item, each(lambda item=item: _flat(item, now))) for item in body]
    if not isinstance(body, dict):
        raise InvalidPosition("not_object", "expected a JSON object or array")
    if "device_id" not in body:
        return [(body, each(lambda: from_query(body, now)))]
    marker_id = body.get("device_id")
    if not isinstance(marker_id, str) or not marker_id:
        raise InvalidPosition("missing_field", "device_id is required")
    locations = body.get("location")
    if isinstance(locations, dict):
        locations = [locations]
    if not isinstance(locations, list) or not locations:
        raise InvalidPosition("missing_field", "location is required")
    return [(location, each(lambda location=location: _json_location(marker_id, location, now)))
            for location in locations]


def _flat(item: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidPosition("not_object", "each element must be a JSON object")
    return from_query(item, now)


def _json_location(marker_id: str, location: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(location, dict):
        raise InvalidPosition("not_object", "each location must be a JSON object")
    coords = location.get("coords") if isinstance(location.get("coords"), dict) else {}
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
    if missing(coords.get("latitude")) or missing(coords.get("longitude")):
        return heartbeat(marker_id, format_time(moment), None if level is None else level * 100, SOURCE,
                         allowed_attributes(attributes, JSON_ATTRIBUTES))
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
