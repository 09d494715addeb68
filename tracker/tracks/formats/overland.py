"""Overland (iOS and Android) batches: ``{"locations": [Feature, ...]}`` as the app POSTs them,
one batch per file, or several (one after another, or one a line, as receivers save them).

Each location is a GeoJSON Point Feature with ``properties``: ``timestamp`` (ISO 8601),
``speed`` (m/s), ``course``, ``altitude``, ``horizontal_accuracy`` (m), ``battery_level``
(0 to 1, sent as %); a negative speed, course or accuracy means unknown. Kept as attributes:
``motion`` (the motion states, as text: "driving,stationary") and ``battery_state``. The
batch's ``current`` and ``trip``, the Wi-Fi network's name, the device id and the app's
settings are left out.
"""
from __future__ import annotations

from typing import Any, BinaryIO, Iterator

from tracker.tracks.files import TIME_KEYS, BadPoint, Point, Reading, known, number, parse_point_time, place
from tracker.tracks.formats.jsonstream import items


def read_overland(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    reading.format = "Overland"
    for index, (_, location) in enumerate(items(stream, "locations.item", multiple_values=True), 1):
        try:
            point = _location(location)
        except BadPoint as exc:
            reading.skip(exc, f"location {index}")
            continue
        if point is not None:
            yield point


def _location(location: Any) -> Point | None:
    if not isinstance(location, dict):
        raise BadPoint("location not a GeoJSON Feature")
    properties = location.get("properties") if isinstance(location.get("properties"), dict) else {}
    if properties.get("type") == "trip":
        return None  # a trip's summary, not a fix
    geometry = location.get("geometry")
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if not isinstance(coordinates, list) or len(coordinates) < 2:
        raise BadPoint("location without a Point geometry")
    point = place(coordinates[1], coordinates[0])
    moment = next((properties[key] for key in TIME_KEYS if properties.get(key) not in (None, "")), None)
    if moment is None:
        raise BadPoint("no timestamp")
    point.time = parse_point_time(moment)
    point.speed = known(number(properties.get("speed"), "speed"))
    point.heading = known(number(properties.get("course"), "course"))
    point.altitude = number(properties.get("altitude"), "altitude")
    point.accuracy = known(number(properties.get("horizontal_accuracy"), "horizontal_accuracy"))
    level = known(number(properties.get("battery_level"), "battery_level"))
    point.battery = None if level is None else round(level * 100.0, 1) if level <= 1.0 else level
    attributes = {}
    motion = properties.get("motion")
    if isinstance(motion, list) and motion and all(isinstance(m, str) for m in motion):
        attributes["motion"] = ",".join(motion)[:64]
    if isinstance(properties.get("battery_state"), str):
        attributes["battery_state"] = properties["battery_state"][:32]
    point.attributes = attributes or None
    return point
