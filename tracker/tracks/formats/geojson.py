"""GeoJSON: a FeatureCollection, a Feature or a bare geometry, read as a stream of JSON events
(``ijson``), one feature at a time.

- LineStrings with a ``coordTimes`` or ``times`` property (one time per coordinate), and
  MultiLineStrings with ``coordTimes`` nested per line (as Garmin and togeojson write them)
  or as one flat list for all the lines; each line after the first is a new segment.
- Point features with a time under any of ``TIME_KEYS`` (ISO 8601 text, or epoch seconds or
  milliseconds), and ``speed``, ``heading`` (``course``, ``bearing``), ``altitude``
  (``ele``, ``elevation``), ``accuracy`` and ``battery`` when present.
- Coordinates as numbers or as text ("14.5"); the third one is the altitude.

Other geometries (polygons, MultiPoint) and other properties are left out. A feature's
coordinates and times are held in compact arrays (32 bytes a point) until the feature ends,
because its properties may come after its geometry: a 10-million-point line takes 320 MB,
a file of many features no more than its largest.
"""
from __future__ import annotations

import math
from array import array
from datetime import timedelta
from typing import Any, BinaryIO, Iterator

import ijson

from tracker.positions.model import EPOCH, MICROSECOND
from tracker.tracks.files import (TIME_KEYS, BadPoint, BadTrackFile, Point, Reading, first_line, number,
                                  parse_point_time, place)

_NO_TIME = -(2 ** 63)
_BAD_TIME = _NO_TIME + 1
_PROPERTIES = (("speed", ("speed",)), ("heading", ("heading", "course", "bearing")),
               ("altitude", ("altitude", "ele", "elevation")), ("accuracy", ("accuracy",)),
               ("battery", ("battery",)))
_FEATURE = "features.item"
_SCALARS = frozenset(("string", "number", "boolean", "null"))


def read_geojson(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    reading.format = "GeoJSON"
    document = _Feature()  # the top level: a Feature, a geometry, or a FeatureCollection around features
    feature: _Feature | None = None
    index = 0
    earlier = False  # points yielded before: a line after them starts a new segment
    kind = None
    try:
        for prefix, event, value in ijson.parse(stream, use_float=True):
            if prefix.startswith(_FEATURE):
                if prefix == _FEATURE:
                    if event == "start_map":
                        feature, index = _Feature(), index + 1
                        continue
                    if event == "end_map" and feature is not None:
                        for point in feature.points(reading, f"feature {index}", earlier):
                            earlier = True
                            yield point
                        feature = None
                        continue
                if feature is None:
                    raise BadTrackFile(f"feature {index + 1} is not an object")
                feature.event(prefix[len(_FEATURE) + 1:], event, value)
                continue
            if prefix == "" and event in _SCALARS:
                raise BadTrackFile("not GeoJSON (no FeatureCollection, Feature or geometry)")
            if prefix == "type":
                kind = value
            if prefix == "features" and event == "start_array":
                continue
            document.event(prefix, event, value)
    except ijson.JSONError as exc:
        raise BadTrackFile(f"not valid JSON ({first_line(exc)})") from None
    if kind is None:
        raise BadTrackFile("not GeoJSON (no FeatureCollection, Feature or geometry)")
    yield from document.points(reading, "the geometry", False)


class _Feature:
    """One feature's geometry and properties, gathered from its events."""

    def __init__(self) -> None:
        self.kind: str | None = None  # the geometry's type
        self.properties: dict[str, Any] = {}
        self.coordinates = array("d")  # lon, lat, altitude (NaN: none) of each position
        self.bad: dict[int, str] = {}  # position: why it cannot be used
        self.lines: list[int] = []  # the first position of each line
        self.times = array("q")  # µs, or _NO_TIME, _BAD_TIME
        self.bad_times: dict[int, str] = {}
        self.time_lists: list[int] = []  # the length of each nested list of times
        self.depth = 0  # of arrays open in the coordinates
        self.opened: list[int] = [0] * 6  # arrays opened so far at each depth
        self.numbers: list[Any] | None = None  # of the innermost array open
        self.position_depth = 0
        self.line_key = -1

    def event(self, prefix: str, event: str, value: Any) -> None:
        if prefix.startswith("geometry.coordinates") or prefix.startswith("coordinates"):
            self._coordinate(event, value)
        elif prefix.startswith("properties."):
            name = prefix[11:]
            if name in ("coordTimes", "times") or name.startswith(("coordTimes.", "times.")):
                self._time(name, event, value)
            elif event in _SCALARS and "." not in name:
                self.properties[name] = value
        elif prefix in ("geometry.type", "type") and event == "string" and value not in ("Feature",):
            self.kind = value

    def _coordinate(self, event: str, value: Any) -> None:
        if event == "start_array":
            self.depth += 1
            if self.depth < len(self.opened):
                self.opened[self.depth] += 1
            self.numbers = []
        elif event == "end_array":
            numbers, self.numbers = self.numbers, None
            depth = self.depth
            self.depth -= 1
            if not numbers:
                return
            if self.position_depth == 0:
                self.position_depth = depth
            key = self.opened[depth - 1] if depth >= 2 else 0
            if key != self.line_key:
                self.line_key = key
                self.lines.append(len(self.coordinates) // 3)
            self._position(numbers)
        elif self.numbers is not None:
            self.numbers.append(value)

    def _position(self, numbers: list[Any]) -> None:
        try:
            if len(numbers) < 2:
                raise BadPoint("coordinate not [lon, lat]")
            point = place(numbers[1], numbers[0])
            altitude = number(numbers[2], "altitude") if len(numbers) > 2 else None
            self.coordinates.extend((point.lon, point.lat, math.nan if altitude is None else altitude))
        except BadPoint as exc:
            self.bad[len(self.coordinates) // 3] = str(exc)
            self.coordinates.extend((0.0, 0.0, math.nan))

    def _time(self, name: str, event: str, value: Any) -> None:
        nested = name.endswith(".item") and name.count(".") == 1
        if event == "start_array" and nested:
            self.time_lists.append(0)
        elif event in _SCALARS and name.endswith(".item"):
            if name.count(".") == 2 and self.time_lists:
                self.time_lists[-1] += 1
            if value is None:
                self.times.append(_NO_TIME)
                return
            try:
                self.times.append((parse_point_time(value) - EPOCH) // MICROSECOND)
            except BadPoint as exc:
                self.bad_times[len(self.times)] = str(exc)
                self.times.append(_BAD_TIME)

    def points(self, reading: Reading, where: str, earlier: bool) -> Iterator[Point]:
        kind = self.kind
        count = len(self.coordinates) // 3
        if kind == "Point" and count:
            yield from self._point(reading, where)
            return
        if kind not in ("LineString", "MultiLineString") or not count:
            return  # polygons and the rest carry no track
        times = self.times if (len(self.times) or self.time_lists) else None
        if times is not None:
            if self.time_lists and kind == "MultiLineString":
                lengths = [b - a for a, b in zip(self.lines, self.lines[1:] + [count])]
                if self.time_lists != lengths:
                    raise BadTrackFile(f"{where}: coordTimes must hold one list of times per line, as long as it")
            if len(times) != count:
                raise BadTrackFile(f"{where}: {len(times)} times for {count} coordinates")
        starts = set(self.lines[1:]) if kind == "MultiLineString" else set()
        coordinates = self.coordinates
        for i in range(count):
            reason = self.bad.get(i)
            moment = _NO_TIME if times is None else times[i]
            if reason is None and moment == _BAD_TIME:
                reason = self.bad_times[i]
            if reason is not None:
                reading.skip(reason, f"{where}, coordinate {i + 1}")
                continue
            altitude = coordinates[3 * i + 2]
            point = Point(None if moment == _NO_TIME else EPOCH + timedelta(microseconds=moment),
                          coordinates[3 * i + 1], coordinates[3 * i],
                          altitude=None if math.isnan(altitude) else altitude)
            point.track_break = i in starts or (i == 0 and earlier and count > 1)
            yield point

    def _point(self, reading: Reading, where: str) -> Iterator[Point]:
        if 0 in self.bad:
            reading.skip(self.bad[0], where)
            return
        lon, lat, altitude = self.coordinates[:3]
        point = Point(None, lat, lon, altitude=None if math.isnan(altitude) else altitude)
        properties = self.properties
        try:
            moment = next((properties[key] for key in TIME_KEYS if properties.get(key) not in (None, "")), None)
            if moment is not None:
                point.time = parse_point_time(moment)
            for field, names in _PROPERTIES:
                value = next((properties[n] for n in names if properties.get(n) not in (None, "")), None)
                if value is not None:
                    setattr(point, field, number(value, field))
        except BadPoint as exc:
            reading.skip(exc, where)
            return
        yield point
