"""TCX (Garmin's Training Center XML, v2): the Trackpoints of every Activity Lap's Track and
of every Course, each ``<Track>`` after the first a new segment.

A Trackpoint holds ``Time``, ``Position`` (``LatitudeDegrees``, ``LongitudeDegrees``),
``AltitudeMeters``; kept as attributes: ``HeartRateBpm/Value`` (``heart_rate``), ``Cadence``
and the ActivityExtension's ``RunCadence`` (``cadence``), ``Watts`` (``power``); its ``Speed``
(m/s) is the speed. A Trackpoint without a Position (a watch recording only the heart rate,
or indoors) is skipped and counted. Laps' totals, ``DistanceMeters``, the sport and the
device are left out.
"""
from __future__ import annotations

from typing import BinaryIO, Iterator

from tracker.tracks.files import BadPoint, Point, Reading, number, parse_point_time, place
from tracker.tracks.formats.xmlstream import children, elements, local, text_of

RECORDS = frozenset(("Trackpoint",))
_ATTRIBUTES = {"Cadence": "cadence", "RunCadence": "cadence", "Watts": "power"}


def read_tcx(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    tracks = count = 0
    new_track = False
    for event, name, element in elements(stream, RECORDS):
        if event == "start":
            if name == "Track":
                new_track, tracks = tracks > 0, tracks + 1
            continue
        if name != "Trackpoint":
            continue
        count += 1
        try:
            point = _trackpoint(element)
        except BadPoint as exc:
            reading.skip(exc, f"trackpoint {count}")
            continue
        point.track_break, new_track = new_track, False
        yield point


def _trackpoint(element) -> Point:
    parts = children(element)
    position = parts.get("Position")
    if position is None:
        raise BadPoint("trackpoint without a Position")
    where = children(position)
    point = place(text_of(where.get("LatitudeDegrees")), text_of(where.get("LongitudeDegrees")))
    time = text_of(parts.get("Time"))
    if time is not None:
        point.time = parse_point_time(time)
    point.altitude = number(text_of(parts.get("AltitudeMeters")), "altitude")
    attributes = {}
    heart = parts.get("HeartRateBpm")
    if heart is not None:
        value = number(text_of(children(heart).get("Value")), "heart rate")
        if value is not None:
            attributes["heart_rate"] = value
    for item in element.iter():
        name = local(item.tag)
        if name == "Speed":
            point.speed = number(text_of(item), "speed")
        elif name in _ATTRIBUTES:
            value = number(text_of(item), name)
            if value is not None:
                attributes.setdefault(_ATTRIBUTES[name], value)
    point.attributes = {k: int(v) if v.is_integer() else v for k, v in attributes.items()} or None
    return point
