"""KML 2.2 (and KMZ, through ``tracker.tracks.files.sources``): the places of every Placemark,
in Documents and Folders nested to any depth, and in MultiGeometry.

- ``gx:Track`` (Google's track extension; each one a segment, also inside
  ``gx:MultiTrack``): its ``<when>`` and ``<gx:coord>`` ("lon lat [alt]") paired in order,
  whether written all times first (as the KML reference shows) or alternating (as Google's
  Location History export did).
- ``Point``: one point, at the Placemark's ``TimeStamp``.
- ``LineString``: its coordinates ("lon,lat[,alt] ..."), each a point without a time of its
  own; when the Placemark has a ``TimeSpan`` with a ``begin`` and ``--interval`` is given,
  point i gets the time begin + i * interval.

Names, descriptions, styles, ``gx:angles`` and ExtendedData (``gx:SimpleArrayData``) are left
out; polygons carry no track.
"""
from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import BinaryIO, Iterator

from tracker.tracks.files import BadPoint, Point, Reading, parse_point_time, place
from tracker.tracks.formats.xmlstream import children, elements, text_of

RECORDS = frozenset(("TimeStamp", "TimeSpan", "Point", "LineString", "when", "coord"))


def read_kml(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    lines = 0  # tracks and line strings so far: each after the first starts after a break
    count = 0
    stamp: datetime | None = None  # the Placemark's TimeStamp
    begin: datetime | None = None  # the Placemark's TimeSpan's begin
    held: list = []  # the Placemark's Points and LineStrings, until its end (its time may follow them)
    times: deque = deque()  # a gx:Track's times and coordinates not yet paired
    coords: deque = deque()
    new_track = False
    for event, name, element in elements(stream, RECORDS):
        if event == "start":
            if name == "Placemark":
                stamp = begin = None
                held.clear()
            elif name == "Track":
                times.clear()
                coords.clear()
                new_track, lines = lines > 0, lines + 1
            continue
        if name == "when":
            times.append(element.text)
        elif name == "coord":
            coords.append(element.text)
        elif name == "TimeStamp":
            stamp = _time(children(element).get("when"), reading, count)
        elif name == "TimeSpan":
            begin = _time(children(element).get("begin"), reading, count)
        elif name in ("Point", "LineString"):
            held.append((name, text_of(children(element).get("coordinates")) or ""))
        elif name == "Track":
            if len(times) != len(coords):
                for _ in range(abs(len(times) - len(coords))):
                    count += 1
                    reading.skip("gx:Track <when> or <gx:coord> without its pair", f"point {count}")
        elif name == "Placemark":
            for kind, text in held:
                if kind == "Point":
                    for point in _coordinates(text, reading, count, 1):
                        count += 1
                        point.time = stamp
                        yield point
                    continue
                start = lines
                lines += 1
                for i, point in enumerate(_coordinates(text, reading, count)):
                    count += 1
                    point.track_break = i == 0 and start > 0
                    if begin is not None and reading.interval is not None:
                        point.time = begin + reading.interval * i
                    yield point
            held.clear()
        while times and coords:
            count += 1
            when, coord = times.popleft(), coords.popleft()
            try:
                parts = (coord or "").split()
                if len(parts) < 2:
                    raise BadPoint("gx:coord not 'lon lat [alt]'")
                point = place(parts[1], parts[0], parse_point_time(when) if when and when.strip() else None)
                if len(parts) > 2:
                    point.altitude = _altitude(parts[2])
            except BadPoint as exc:
                reading.skip(exc, f"point {count}")
                continue
            point.track_break, new_track = new_track, False
            yield point


def _coordinates(text: str, reading: Reading, before: int, limit: int | None = None) -> Iterator[Point]:
    """The points of a KML ``<coordinates>``: "lon,lat[,alt]" tuples apart by white space."""
    for i, item in enumerate(text.split()[:limit], before + 1):
        parts = item.split(",")
        try:
            if len(parts) < 2:
                raise BadPoint("coordinate not 'lon,lat[,alt]'")
            point = place(parts[1], parts[0])
            if len(parts) > 2:
                point.altitude = _altitude(parts[2])
        except BadPoint as exc:
            reading.skip(exc, f"point {i}")
            continue
        yield point


def _altitude(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _time(element, reading: Reading, count: int) -> datetime | None:
    text = text_of(element)
    if text is None:
        return None
    try:
        return parse_point_time(text)
    except BadPoint as exc:
        reading.skip(exc, f"the time after point {count}")
        return None
