"""Google's location history, in the three shapes Google wrote it, and the Takeout archive.

- ``Records.json`` (``read_records``; also ``Location History.json`` of older archives): the
  raw fixes, ``{"locations": [...]}``, each with ``latitudeE7``/``longitudeE7`` (degrees
  times 10^7), ``timestamp`` (ISO 8601) or ``timestampMs`` (older: epoch ms, as text),
  ``accuracy`` (m), ``velocity`` (m/s), ``heading``, ``altitude``. Kept as attributes:
  ``source`` (GPS, WIFI, CELL) as ``provider``, and the most likely ``activity`` type.
  Often 1 GB or more: read one record at a time.
- Semantic Location History (``read_semantic``; monthly files ``2022_JANUARY.json``):
  ``timelineObjects``, each an ``activitySegment`` (its start and end locations at its
  start and end times, and between them its ``simplifiedRawPath`` points, which have times,
  or else its ``waypointPath``, which has none and is spread between them; the
  ``activityType`` as the ``activity`` attribute) or a ``placeVisit`` (its place at its
  arrival and at its departure). Times in ``duration`` as ``startTimestamp`` or
  ``startTimestampMs``.
- The phone's Timeline export (``read_timeline``; ``Timeline.json``, 2024 on):
  ``semanticSegments`` with ``timelinePath`` points (``"point": "50.05°, 14.34°"`` and a
  ``time``), ``visit`` (its top candidate's place at the start and at the end; only the
  outermost of nested visits) and ``activity`` (start and end, the ``activity`` attribute);
  and ``rawSignals`` positions (``LatLng``, ``accuracyMeters``, ``altitudeMeters``,
  ``speedMetersPerSecond``, ``timestamp``).

Places' names, addresses and ids, confidences, Wi-Fi scans, device tags and the user's
location profile are left out.

A Takeout ``.zip`` (``members``) is read without unpacking it: its ``Records.json`` when it
has one (the Semantic files are made from the same fixes), else its Semantic Location
History files in order of month, else a ``Timeline.json``; an archive of other track files
(a KMZ) gives its KML, GPX, GeoJSON, TCX, CSV and ``.rec`` files in name order.
"""
from __future__ import annotations

import re
import zipfile
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, BinaryIO, Iterator

from tracker.tracks.files import BadPoint, Point, Reading, known, lat_lon_text, number, parse_point_time, place
from tracker.tracks.formats.jsonstream import items

#: A few records' E7 coordinates overflowed a signed 32-bit integer; read them wrapped around.
_E7_WRAP = 2 ** 32
_MONTHS = ("JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
           "NOVEMBER", "DECEMBER")
_TRACK_SUFFIXES = (".kml", ".gpx", ".geojson", ".tcx", ".csv", ".rec")


def read_records(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    reading.format = "Google Takeout Records.json"
    for index, (_, record) in enumerate(items(stream, "locations.item"), 1):
        try:
            if not isinstance(record, dict):
                raise BadPoint("record not an object")
            point = _e7(record.get("latitudeE7"), record.get("longitudeE7"))
            moment = record.get("timestamp")
            if moment is None:
                moment = record.get("timestampMs")
            if moment is None:
                raise BadPoint("no timestamp")
            point.time = parse_point_time(moment)
            point.accuracy = known(number(record.get("accuracy"), "accuracy"))
            point.speed = known(number(record.get("velocity"), "velocity"))
            point.heading = known(number(record.get("heading"), "heading"))
            point.altitude = number(record.get("altitude"), "altitude")
        except BadPoint as exc:
            reading.skip(exc, f"record {index}")
            continue
        attributes = {}
        if isinstance(record.get("source"), str):
            attributes["provider"] = record["source"][:32]
        activity = _record_activity(record.get("activity"))
        if activity is not None:
            attributes["activity"] = activity
        point.attributes = attributes or None
        yield point


def _record_activity(value: Any) -> str | None:
    """The most likely activity of a record's first activity reading."""
    if not isinstance(value, list) or not value or not isinstance(value[0], dict):
        return None
    guesses = value[0].get("activity")
    if not isinstance(guesses, list) or not guesses or not isinstance(guesses[0], dict):
        return None
    kind = guesses[0].get("type")
    return kind[:32] if isinstance(kind, str) else None


def read_semantic(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    reading.format = "Google Semantic Location History"
    for index, (_, item) in enumerate(items(stream, "timelineObjects.item"), 1):
        where = f"timeline object {index}"
        if not isinstance(item, dict):
            reading.skip("timeline object not an object", where)
            continue
        segment, visit = item.get("activitySegment"), item.get("placeVisit")
        if isinstance(segment, dict):
            yield from _segment(segment, reading, where)
        elif isinstance(visit, dict):
            yield from _visit(visit, reading, where)


def _segment(segment: dict, reading: Reading, where: str) -> Iterator[Point]:
    start, end = _duration(segment.get("duration"), reading, where)
    activity = segment.get("activityType")
    attributes = {"activity": activity[:32]} if isinstance(activity, str) else None
    path = _dig(segment, "simplifiedRawPath", "points")
    timed_path = bool(path)
    if not path:
        path = _dig(segment, "waypointPath", "waypoints")
    places: list[tuple[Any, Any, Any, datetime | None | str]] = [
        (_dig(segment, "startLocation", "latitudeE7"), _dig(segment, "startLocation", "longitudeE7"), None, start)]
    for step in path if isinstance(path, list) else ():
        if isinstance(step, dict):
            moment = step.get("timestamp", step.get("timestampMs")) if timed_path else None
            places.append((step.get("latE7"), step.get("lngE7"), step.get("accuracyMeters"), moment))
    places.append((_dig(segment, "endLocation", "latitudeE7"), _dig(segment, "endLocation", "longitudeE7"), None, end))
    places = [(_e7, (lat, lon), moment, accuracy) for lat, lon, accuracy, moment in places
              if lat is not None or lon is not None]  # a segment may lack a start or end location
    yield from _located(places, attributes, reading, where)


def _located(places: list, attributes: dict | None, reading: Reading, where: str) -> Iterator[Point]:
    """A point for each (locate, its arguments, time, accuracy) of ``places``."""
    for locate, arguments, moment, accuracy in places:
        try:
            point = locate(*arguments)
            point.time = moment if moment is None or isinstance(moment, datetime) else parse_point_time(moment)
            point.accuracy = known(number(accuracy, "accuracy"))
        except BadPoint as exc:
            reading.skip(exc, where)
            continue
        point.attributes = dict(attributes) if attributes else None
        yield point


def _visit(visit: dict, reading: Reading, where: str) -> Iterator[Point]:
    start, end = _duration(visit.get("duration"), reading, where)
    location = visit.get("location") if isinstance(visit.get("location"), dict) else {}
    lat, lon = location.get("latitudeE7"), location.get("longitudeE7")
    if lat is None or lon is None:
        lat, lon = visit.get("centerLatE7"), visit.get("centerLngE7")
    for moment in (start, end):
        try:
            point = _e7(lat, lon)
        except BadPoint as exc:
            reading.skip(exc, where)
            return
        point.time = moment
        yield point


def _duration(duration: Any, reading: Reading, where: str) -> tuple[datetime | None, datetime | None]:
    times = []
    for key in ("startTimestamp", "endTimestamp"):
        value = _dig(duration, key)
        if value is None:
            value = _dig(duration, key + "Ms")
        try:
            times.append(None if value is None else parse_point_time(value))
        except BadPoint as exc:
            reading.skip(exc, where)
            times.append(None)
    return times[0], times[1]


def read_timeline(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    reading.format = "Google Timeline export"
    index = 0
    for prefix, item in items(stream, "semanticSegments.item", "rawSignals.item"):
        index += 1
        where = f"{prefix.partition('.')[0]} item {index}"
        if not isinstance(item, dict):
            continue
        if prefix == "rawSignals.item":
            signal = item.get("position")
            if isinstance(signal, dict):
                yield from _signal(signal, reading, where)
            continue
        places: list[tuple[Any, Any]] = []
        path = item.get("timelinePath")
        for step in path if isinstance(path, list) else ():
            if isinstance(step, dict):
                places.append((step.get("point"), step.get("time")))
        visit, activity = item.get("visit"), item.get("activity")
        attributes = None
        if isinstance(visit, dict) and visit.get("hierarchyLevel", 0) in (0, "0"):
            spot = _dig(visit, "topCandidate", "placeLocation")
            spot = spot.get("latLng") if isinstance(spot, dict) else spot
            places += [(spot, item.get("startTime")), (spot, item.get("endTime"))]
        elif isinstance(activity, dict):
            kind = _dig(activity, "topCandidate", "type")
            attributes = {"activity": kind[:32]} if isinstance(kind, str) else None
            places += [(_dig(activity, "start", "latLng") or activity.get("start"), item.get("startTime")),
                       (_dig(activity, "end", "latLng") or activity.get("end"), item.get("endTime"))]
        yield from _located([(_lat_lon, (text,), moment, None) for text, moment in places], attributes, reading,
                            where)


def _signal(signal: dict, reading: Reading, where: str) -> Iterator[Point]:
    try:
        point = _lat_lon(signal.get("LatLng", signal.get("latLng")))
        moment = signal.get("timestamp")
        if moment is None:
            raise BadPoint("no timestamp")
        point.time = parse_point_time(moment)
        point.accuracy = known(number(signal.get("accuracyMeters"), "accuracy"))
        point.altitude = number(signal.get("altitudeMeters"), "altitude")
        point.speed = known(number(signal.get("speedMetersPerSecond"), "speed"))
    except BadPoint as exc:
        reading.skip(exc, where)
        return
    if isinstance(signal.get("source"), str):
        point.attributes = {"provider": signal["source"][:32]}
    yield point


def _lat_lon(text: Any) -> Point:
    return place(*lat_lon_text(text))


def _e7(lat: Any, lon: Any) -> Point:
    lat, lon = number(lat, "latitudeE7"), number(lon, "longitudeE7")
    if lat is None or lon is None:
        raise BadPoint("no latitudeE7 and longitudeE7")
    if lat > 900_000_000:
        lat -= _E7_WRAP
    if lon > 1_800_000_000:
        lon -= _E7_WRAP
    return place(lat / 1e7, lon / 1e7)


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def members(infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The members of a zip archive to read, in order (see the module's docstring)."""
    files = [info for info in infos if not info.is_dir()]
    named = {info: PurePosixPath(info.filename) for info in files}
    records = [info for info in files if named[info].name in ("Records.json", "Location History.json")]
    if records:
        return records[:1]
    semantic = [info for info in files if "Semantic Location History" in info.filename
                and named[info].suffix.lower() == ".json"]
    if semantic:
        return sorted(semantic, key=lambda info: _month(named[info].stem))
    timeline = [info for info in files if named[info].name == "Timeline.json"]
    if timeline:
        return timeline[:1]
    tracks = [info for info in files if named[info].suffix.lower() in _TRACK_SUFFIXES]
    return sorted(tracks, key=lambda info: (named[info].name != "doc.kml", info.filename))


def _month(stem: str) -> tuple[int, int, str]:
    """``2022_JANUARY`` as (2022, 1): the order of the Semantic Location History files."""
    match = re.fullmatch(r"(\d{4})_([A-Z]+)", stem)
    if match is None or match[2] not in _MONTHS:
        return (9999, 99, stem)
    return (int(match[1]), _MONTHS.index(match[2]) + 1, stem)
