"""GPX 1.0 and 1.1: the points of every track segment; route points only when there is no track.

A file with nothing but waypoints is refused (places, not a journey). Speed and course come
from GPX 1.0's ``<speed>``/``<course>`` or from any element of ``<extensions>`` with those
names (Garmin's TrackPointExtension, OsmAnd's), and so does the heading from ``heading`` or
``bearing``. Kept as attributes: heart rate (``hr``, ``heartrate``: ``heart_rate``),
cadence (``cad``, ``cadence``), temperature (``atemp``, ``temp``: ``temperature``, °C),
``power`` (W), and GPX's own ``<sat>`` and ``<hdop>``. Names, descriptions, links and the
rest are left out.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

from tracker.tracks.files import BadPoint, BadTrackFile, Point, Reading, number, parse_point_time, place
from tracker.tracks.formats.xmlstream import elements, local

RECORDS = frozenset(("trkpt", "rtept", "wpt"))
_FIELDS = {"ele": "altitude", "speed": "speed", "course": "heading", "heading": "heading", "bearing": "heading"}
_ATTRIBUTES = {"hr": "heart_rate", "heartrate": "heart_rate", "heart_rate": "heart_rate", "cad": "cadence",
               "cadence": "cadence", "atemp": "temperature", "temp": "temperature", "power": "power",
               "sat": "sat", "hdop": "hdop"}


def read_gpx(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    route: list[Point] = []  # held until the end: a track, if any, wins
    tracked = waypoints = 0
    new_segment = False
    for event, name, element in elements(stream, RECORDS):
        if event == "start":
            if name == "trkseg":
                new_segment = tracked > 0
            continue
        if name == "wpt":
            waypoints += 1
            continue
        if name not in ("trkpt", "rtept"):
            continue
        index = tracked + len(route) + 1
        try:
            point = _point(element)
        except BadPoint as exc:
            reading.skip(exc, f"point {index}")
            continue
        if name == "rtept":
            if not tracked:
                route.append(point)
            continue
        if tracked == 0:
            route.clear()
        point.track_break = new_segment
        new_segment = False
        tracked += 1
        yield point
    if not tracked:
        if not route and waypoints and not reading.skips.total:
            raise BadTrackFile("only waypoints, no track or route: waypoints are places, not a journey")
        if not route and not reading.skips.total:
            raise BadTrackFile("no track or route points")
        yield from route


def _point(element) -> Point:
    attributes = element.attrib
    point = place(attributes.get("lat"), attributes.get("lon"))
    for child in element:
        name = local(child.tag)
        if name == "time":
            if child.text is not None and child.text.strip():
                point.time = parse_point_time(child.text)
        elif name == "extensions":
            for item in child.iter():
                _value(point, local(item.tag), item.text, from_extension=True)
        else:
            _value(point, name, child.text, from_extension=False)
    return point


def _value(point: Point, name: str, text: str | None, *, from_extension: bool) -> None:
    field = _FIELDS.get(name)
    if field is not None:
        if from_extension and getattr(point, field) is not None:
            return  # GPX's own value first
        value = number(text, name)
        if field == "speed" or field == "heading":
            value = None if value is None or value < 0 else value
        setattr(point, field, value)
        return
    attribute = _ATTRIBUTES.get(name)
    if attribute is not None:
        value = number(text, name)
        if value is not None:
            if point.attributes is None:
                point.attributes = {}
            point.attributes.setdefault(attribute, int(value) if value.is_integer() else value)
