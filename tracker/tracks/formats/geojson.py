"""GeoJSON: a FeatureCollection, a Feature or a bare geometry, read as a stream of JSON events
(``ijson``), one feature at a time.

- LineStrings with a ``coordTimes`` or ``times`` property (one time per coordinate), and
  MultiLineStrings with ``coordTimes`` nested per line (as Garmin and togeojson write them)
  or as one flat list for all the lines; each line after the first is a new segment.
- Point features with a time under any of ``TIME_KEYS`` (ISO 8601 text, or epoch seconds or
  milliseconds), and ``speed``, ``heading`` (``course``, ``bearing``), ``altitude``
  (``ele``, ``elevation``), ``accuracy`` and ``battery`` when present.
- Coordinates as numbers or as text ("14.5"); the third one is the altitude.

Other geometries (polygons, MultiPoint) and other properties are left out. A line's times
are held in a compact array (8 bytes a point); its points are handed out as its coordinates
come when its type and properties come before them (as togeojson, GDAL and Garmin write
them), else held in compact arrays (24 bytes a point) until the feature ends: a file of
many features holds no more than its largest.
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
_LINES = ("LineString", "MultiLineString")


def read_geojson(stream: BinaryIO, reading: Reading) -> Iterator[Point]:
    reading.format = "GeoJSON"
    # The top level: a Feature, a geometry, or a FeatureCollection around features.
    document = _Feature(reading, "the geometry", feature=False)
    feature: _Feature | None = None
    index = 0
    kind = None
    try:
        for prefix, event, value in ijson.parse(stream, use_float=True):
            if prefix.startswith(_FEATURE):
                if prefix == _FEATURE:
                    if event == "start_map":
                        index += 1
                        feature = _Feature(reading, f"feature {index}", earlier=feature is not None and feature.any)
                        continue
                    if event == "end_map" and feature is not None:
                        yield from feature.end()
                        continue
                if feature is None or feature.ended:
                    raise BadTrackFile(f"feature {index + (feature is not None)} is not an object")
                feature.event(prefix[len(_FEATURE) + 1:], event, value)
                if feature.out:
                    yield from feature.out
                    feature.out.clear()
                continue
            if prefix == "" and event in _SCALARS:
                raise BadTrackFile("not GeoJSON (no FeatureCollection, Feature or geometry)")
            if prefix == "type":
                kind = value
            if prefix == "features" and event == "start_array":
                continue
            document.event(prefix, event, value)
            if document.out:
                yield from document.out
                document.out.clear()
    except ijson.JSONError as exc:
        raise BadTrackFile(f"not valid JSON ({first_line(exc)})") from None
    if kind is None:
        raise BadTrackFile("not GeoJSON (no FeatureCollection, Feature or geometry)")
    yield from document.end()


class _Feature:
    """One feature's geometry and properties, gathered from its events.

    The points of a line are handed out (``out``) as its coordinates come when its type
    and, for a Feature, its properties (its times) came first; otherwise its coordinates are
    held in compact arrays until the feature ends."""

    def __init__(self, reading: Reading, where: str, *, feature: bool = True, earlier: bool = False) -> None:
        self.reading, self.where = reading, where
        self.earlier = earlier  # points came before: a line starts a new piece of recording
        self.bare = False  # a geometry without properties: its own "type" says so (never a feature's)
        self.feature = feature
        self.kind: str | None = None  # the geometry's type
        self.properties: dict[str, Any] = {}
        self.properties_done = False
        self.streaming = False
        self.out: list[Point] = []
        self.any = earlier  # a point handed out, here or before
        self.ended = False
        self.count = 0  # positions so far
        self.coordinates = array("d")  # lon, lat, altitude (NaN: none) of each held position
        self.bad: dict[int, str] = {}  # held position: why it cannot be used
        self.lines: list[int] = []  # the first position of each line
        self.times = array("q")  # µs, or _NO_TIME, _BAD_TIME
        self.bad_times: dict[int, str] = {}
        self.time_lists: list[int] = []  # the length of each nested list of times
        self.depth = 0  # of arrays open in the coordinates
        self.opened: list[int] = [0] * 6  # arrays opened so far at each depth
        self.numbers: list[Any] | None = None  # of the innermost array open
        self.line_key = -1

    def event(self, prefix: str, event: str, value: Any) -> None:
        if prefix.startswith("geometry.coordinates") or prefix.startswith("coordinates"):
            self._coordinate(event, value)
        elif prefix.startswith("properties"):
            name = prefix[11:]
            if name in ("coordTimes", "times") or name.startswith(("coordTimes.", "times.")):
                self._time(name, event, value)
            elif event in _SCALARS and name and "." not in name:
                self.properties[name] = value
            elif prefix == "properties" and event == "end_map":
                self.properties_done = True
        elif prefix == "geometry.type" and event == "string":
            self.kind = value
        elif prefix == "type" and event == "string" and value != "Feature" and not self.feature:
            self.kind = value
            self.bare = True

    def _coordinate(self, event: str, value: Any) -> None:
        if event == "start_array":
            if self.depth == 0:
                self.streaming = self.kind in _LINES and (self.properties_done or self.bare)
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
            key = self.opened[depth - 1] if depth >= 2 else 0
            if key != self.line_key:
                self.line_key = key
                self.lines.append(self.count)
            self._position(numbers)
        elif self.numbers is not None:
            self.numbers.append(value)

    def _position(self, numbers: list[Any]) -> None:
        index = self.count
        self.count += 1
        try:
            if len(numbers) < 2:
                raise BadPoint("coordinate not [lon, lat]")
            point = place(numbers[1], numbers[0])
            altitude = number(numbers[2], "altitude") if len(numbers) > 2 else None
        except BadPoint as exc:
            if self.streaming:
                self.reading.skip(exc, f"{self.where}, coordinate {index + 1}")
            else:
                self.bad[index] = str(exc)
                self.coordinates.extend((0.0, 0.0, math.nan))
            return
        if not self.streaming:
            self.coordinates.extend((point.lon, point.lat, math.nan if altitude is None else altitude))
            return
        point.altitude = altitude
        if self._timed(point, index):
            point.track_break = self._starts_piece(index)
            self.out.append(point)
            self.any = True

    def _timed(self, point: Point, index: int) -> bool:
        """Give the point the time of its index; False (counted) if that time is not one."""
        times = self.times
        if index >= len(times):
            return True  # no times, or too few: the end says so
        moment = times[index]
        if moment == _BAD_TIME:
            self.reading.skip(self.bad_times[index], f"{self.where}, coordinate {index + 1}")
            return False
        if moment != _NO_TIME:
            point.time = EPOCH + timedelta(microseconds=moment)
        return True

    def _starts_piece(self, index: int) -> bool:
        if index == 0:
            return self.earlier
        return self.kind == "MultiLineString" and self.lines[-1] == index

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

    def end(self) -> Iterator[Point]:
        """The points still held, once the feature has ended; ``BadTrackFile`` if its times
        do not match its coordinates."""
        self.ended = True
        kind, count = self.kind, self.count
        if kind == "Point" and count:
            yield from self._point()
            return
        if kind not in _LINES or not count:
            return  # polygons and the rest carry no track
        if len(self.times) or self.time_lists:
            if self.time_lists and kind == "MultiLineString":
                lengths = [b - a for a, b in zip(self.lines, self.lines[1:] + [count])]
                if self.time_lists != lengths:
                    raise BadTrackFile(f"{self.where}: coordTimes must hold one list of times per line, as long as it")
            if len(self.times) != count:
                raise BadTrackFile(f"{self.where}: {len(self.times)} times for {count} coordinates")
        if self.streaming:
            return
        starts = set(self.lines)
        coordinates = self.coordinates
        for i in range(count):
            reason = self.bad.get(i)
            if reason is not None:
                self.reading.skip(reason, f"{self.where}, coordinate {i + 1}")
                continue
            altitude = coordinates[3 * i + 2]
            point = Point(None, coordinates[3 * i + 1], coordinates[3 * i],
                          altitude=None if math.isnan(altitude) else altitude)
            if self._timed(point, i):
                point.track_break = self.earlier if i == 0 else kind == "MultiLineString" and i in starts
                self.any = True
                yield point

    def _point(self) -> Iterator[Point]:
        if 0 in self.bad:
            self.reading.skip(self.bad[0], self.where)
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
            self.reading.skip(exc, self.where)
            return
        self.any = True
        yield point
