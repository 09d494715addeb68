"""Traccar as a protocol gateway: the JSON a Traccar server forwards for every position it
decodes (``forward.type=json`` over HTTP, or ``forward.type=kafka``), whatever the tracker.

``{"position": {...}, "device": {...}}`` in Traccar's own model: ``position.latitude``,
``longitude``, ``altitude`` (m), ``speed`` (knots), ``course`` (degrees), ``accuracy`` (m),
``fixTime`` (ISO 8601 with an offset), ``valid`` (false: the tracker had no GPS fix) and
``attributes``; ``device.uniqueId`` (the tracker's own id, an IMEI mostly) and
``device.name``.

- The marker id is ``device.uniqueId`` with the spaces around it removed; one that breaks
  the marker-id rules is refused with the reason (``tracker.positions.model.MARKER_ID_RULE``).
- ``valid: false`` (the tracker had no GPS fix; Traccar repeats its last coordinates) is not
  a position: it becomes a heartbeat (``tracker.ingest.protocols.heartbeat``), at its
  ``deviceTime`` (else ``fixTime``), which keeps the tracker alive and carries its battery
  and alarms; it reaches neither the positions of ``latest`` nor history
  (``has_fix`` says which it is, for the caller's count).
- Attributes we understand become fields: ``batteryLevel`` (%) the battery. ``motion``,
  ``ignition``, ``odometer`` (m), ``sat``, ``hdop``, ``charge``, ``alarm`` and ``event`` are
  kept under their names (``ALLOWED``); the rest is dropped (see
  ``tracker.ingest.protocols.allowed_attributes``). ``device.name`` becomes the ``name``
  attribute, which the map shows as the marker's name.
- A ``fixTime`` of 0 or 1970 (some trackers before their first fix) is refused by the
  usual validation, as a time too far in the past is anywhere else.
"""
from __future__ import annotations

from typing import Any

from tracker.positions.model import (HEARTBEAT, MARKER_ID_PATTERN, MARKER_ID_RULE, InvalidPosition, format_time,
                                     parse_time)
from tracker.ingest.protocols import allowed_attributes, heartbeat, missing, number

SOURCE = "traccar"
KNOT = 1852 / 3600  # m/s
#: Traccar's position attributes kept, under their own names.
ALLOWED = ("motion", "ignition", "odometer", "sat", "hdop", "charge", "alarm", "event")
MAX_NAME = 128


def marker_id_of(device: Any) -> str:
    if not isinstance(device, dict):
        raise InvalidPosition("missing_field", "device is required: an object with uniqueId")
    unique_id = device.get("uniqueId")
    if not isinstance(unique_id, str) or not unique_id.strip():
        raise InvalidPosition("missing_field", "device.uniqueId is required")
    marker_id = unique_id.strip()
    if MARKER_ID_PATTERN.fullmatch(marker_id) is None:
        raise InvalidPosition("bad_marker_id", f"device.uniqueId {marker_id[:70]!r} is not a valid marker id: "
                                               f"{MARKER_ID_RULE}")
    return marker_id


def has_fix(record: dict[str, Any]) -> bool:
    """Whether a converted record is a position (not the heartbeat of ``valid: false``)."""
    return record.get("kind") != HEARTBEAT


def convert(body: Any) -> dict[str, Any]:
    """One forwarded position as a ``gps.positions`` record: a position, or a heartbeat for
    ``valid: false``."""
    if not isinstance(body, dict):
        raise InvalidPosition("wrong_type", 'expected {"position": {...}, "device": {...}}')
    position, device = body.get("position"), body.get("device")
    if not isinstance(position, dict):
        raise InvalidPosition("missing_field", "position is required: an object")
    marker_id = marker_id_of(device)
    raw = position.get("attributes")
    attributes = raw if isinstance(raw, dict) else {}
    kept = allowed_attributes(attributes, ALLOWED)
    name = device.get("name")
    if isinstance(name, str) and name.strip():
        kept["name"] = name.strip()[:MAX_NAME]
    battery = number(attributes.get("batteryLevel"), "batteryLevel")
    if position.get("valid") is False:
        moment = position.get("deviceTime") if not missing(position.get("deviceTime")) else position.get("fixTime")
        if missing(moment):
            raise InvalidPosition("missing_field", "position.deviceTime or position.fixTime is required")
        return heartbeat(marker_id, format_time(parse_time(moment, max_future=None)), battery, SOURCE, kept)
    if position.get("fixTime") in (None, ""):
        raise InvalidPosition("missing_field", "position.fixTime is required")
    speed = number(position.get("speed"), "speed")
    accuracy = number(position.get("accuracy"), "accuracy")
    return {
        "marker_id": marker_id,
        "lat": number(position.get("latitude"), "latitude"),
        "lon": number(position.get("longitude"), "longitude"),
        "time": format_time(parse_time(position["fixTime"], max_future=None)),
        "speed": None if speed is None else speed * KNOT,
        "heading": number(position.get("course"), "course"),
        "altitude": number(position.get("altitude"), "altitude"),
        "accuracy": accuracy or None,  # Traccar writes 0 for "not reported"
        "battery": battery,
        "source": SOURCE,
        "attributes": kept or None,
    }
