"""Recorded tracks from files: GPX 1.0 and 1.1, GeoJSON, OwnTracks Recorder ``.rec``.

One function per format turns a file's bytes into its points, in file order: a ``Point``
holds the time (``None`` when the file gives none), lat, lon, and whatever the file says of
speed (m/s), heading (degrees), altitude (m), accuracy (m) and battery (%). The first point
of every track segment or line after the first has ``track_break`` set: the device stopped
recording before it (the journeys take it as a gap: ``tracker.journeys.motion``).

- GPX (``read_gpx``): the points of every track segment; route points only when there is
  no track; a file with nothing but waypoints is refused (places, not a journey). Speed
  and course from GPX 1.0's ``<speed>``/``<course>`` or from any ``<extensions>`` element
  named ``speed``/``course`` (Garmin's TrackPointExtension).
- GeoJSON (``read_geojson``): a FeatureCollection, a Feature or a bare geometry;
  LineStrings with a ``coordTimes`` or ``times`` property (one time per coordinate),
  MultiLineStrings with ``coordTimes`` nested per line (as Garmin and togeojson write
  them), and Point features with a ``time`` property (and ``speed``, ``heading``,
  ``altitude``, ``accuracy``, ``battery`` when present). Other geometries are skipped.
- OwnTracks Recorder (``read_rec``): lines ``<ISO time>\\t<tag>\\t<JSON>``; the objects of
  ``"_type": "location"`` (``tst`` epoch seconds, ``vel`` km/h, ``cog``, ``alt``, ``acc``,
  ``batt``).

``read`` picks the format by the file's suffix, else by its first bytes. A file that cannot
be used raises ``BadTrackFile`` with one line naming the file and the reason. ``fill_times``
gives the points without a time one (``tracker import`` and ``tracker replay``).
"""
from __future__ import annotations

import gc
import re
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

from tracker.positions.model import InvalidPosition, parse_time
from tracker.ingest.protocols import known, number

#: Points without a time before the first timed point, or after the last, are this far apart.
DEFAULT_STEP = timedelta(seconds=1)


class BadTrackFile(Exception):
    """The file cannot be imported; the message says why, in one line."""


@dataclass(slots=True)
class Point:
    time: datetime | None  # aware, UTC
    lat: float
    lon: float
    speed: float | None = None
    heading: float | None = None
    altitude: float | None = None
    accuracy: float | None = None
    battery: float | None = None
    track_break: bool = False  # the recording stopped before this point (a new segment or line)


def read(path: Path) -> list[Point]:
    """The points of one file, in file order; ``BadTrackFile`` if it has none or is unusable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadTrackFile(f"cannot read {path}: {exc.strerror or exc.__class__.__name__}") from None
    try:
        with _no_cycle_collection():
            points = _reader(path, data)(data)
    except BadTrackFile as exc:
        raise BadTrackFile(f"{path}: {exc}") from None
    if not points:
        raise BadTrackFile(f"{path}: no points")
    return points


def fill_times(times: list[datetime | None], step: timedelta = DEFAULT_STEP) -> list[datetime]:
    """Every ``None`` of ``times`` (which has at least one time) given one: spread evenly
    between the timed points around it, ``step`` apart before the first and after the last."""
    known_at = [i for i, t in enumerate(times) if t is not None]
    if not known_at:
        raise ValueError("no times to fill from")
    filled = list(times)
    first, last = known_at[0], known_at[-1]
    for i in range(first):  # before the first timed point
        filled[i] = times[first] - step * (first - i)
    for i in range(last + 1, len(times)):  # after the last one
        filled[i] = times[last] + step * (i - last)
    for left, right in zip(known_at, known_at[1:]):  # gaps between timed points
        if right - left > 1:
            span = (times[right] - times[left]) / (right - left)
            for i in range(left + 1, right):
                filled[i] = times[left] + span * (i - left)
    return filled


# --- GPX ------------------------------------------------------------------------------------
def read_gpx(data: bytes) -> list[Point]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise BadTrackFile(f"not valid XML ({exc})") from None
    namespace, _, name = root.tag[1:].rpartition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if name != "gpx":
        raise BadTrackFile(f"not GPX (its root element is <{name}>, not <gpx>)")
    q = (lambda tag: f"{{{namespace}}}{tag}") if namespace else (lambda tag: tag)
    segments = [s for s in (list(seg.iterfind(q("trkpt")))
                            for seg in root.iterfind(f"{q('trk')}/{q('trkseg')}")) if s]
    elements = [element for segment in segments for element in segment]
    breaks = {id(segment[0]) for segment in segments[1:]}
    if not elements:
        elements = list(root.iterfind(f"{q('rte')}/{q('rtept')}"))
    if not elements:
        if root.find(q("wpt")) is not None:
            raise BadTrackFile("only waypoints, no track or route: waypoints are places, not a journey")
        raise BadTrackFile("no track or route points")
    tags = {q("time"): "time", q("ele"): "altitude", q("speed"): "speed", q("course"): "heading",
            q("extensions"): "extensions"}
    points = []
    for index, element in enumerate(elements, 1):
        attributes = element.attrib
        try:
            point = Point(None, _float(attributes.get("lat"), "lat"), _float(attributes.get("lon"), "lon"))
            for child in element:
                field = tags.get(child.tag)
                if field is None:
                    continue
                if field == "time":
                    point.time = _time(child.text)
                elif field == "extensions":
                    _gpx_extensions(child, point)
                else:
                    setattr(point, field, _float(child.text, field))
            _check_coordinates(point)
        except BadTrackFile as exc:
            raise BadTrackFile(f"point {index}: {exc}") from None
        point.track_break = id(element) in breaks
        points.append(point)
    return points


def _gpx_extensions(extensions: ET.Element, point: Point) -> None:
    """Speed and course from extensions (``gpxtpx:speed``, ``gpxtpx:course``, ...) unless
    the point has them already."""
    for element in extensions.iter():
        name = element.tag.rpartition("}")[2]
        if name == "speed" and point.speed is None:
            point.speed = _float(element.text, "speed")
        elif name == "course" and point.heading is None:
            point.heading = _float(element.text, "course")


# --- GeoJSON ----------------------------------------------------------------------------------
_GEOMETRIES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
               "GeometryCollection")


def read_geojson(data: bytes) -> list[Point]:
    try:
        document = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise BadTrackFile(f"not valid JSON ({exc})") from None
    kind = document.get("type") if isinstance(document, dict) else None
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise BadTrackFile("a FeatureCollection without a list of features")
    elif kind == "Feature":
        features = [document]
    elif kind in _GEOMETRIES:
        features = [{"type": "Feature", "geometry": document, "properties": {}}]
    else:
        raise BadTrackFile("not GeoJSON (no FeatureCollection, Feature or geometry)")
    points: list[Point] = []
    for index, feature in enumerate(features, 1):
        try:
            found = _feature_points(feature)
        except BadTrackFile as exc:
            raise BadTrackFile(f"feature {index}: {exc}") from None
        if points and found and len(found) > 1:  # another line: a new piece of recording
            found[0].track_break = True
        points.extend(found)
    return points


def _feature_points(feature: Any) -> list[Point]:
    if not isinstance(feature, dict):
        raise BadTrackFile("not an object")
    geometry = feature.get("geometry") or {}
    properties = feature.get("properties") or {}
    if not isinstance(geometry, dict) or not isinstance(properties, dict):
        raise BadTrackFile("geometry and properties must be objects")
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Point":
        point = _coordinate(coordinates, "the Point")
        point.time = None if properties.get("time") is None else _time(properties["time"])
        for field, names in (("speed", ("speed",)), ("heading", ("heading", "course")),
                             ("altitude", ("altitude", "ele")), ("accuracy", ("accuracy",)),
                             ("battery", ("battery",))):
            value = next((properties[n] for n in names if properties.get(n) is not None), None)
            if value is not None:
                setattr(point, field, _json_number(value, field))
        return [point]
    times = properties.get("coordTimes", properties.get("times"))
    if kind == "LineString":
        return _line(coordinates, times)
    if kind == "MultiLineString":
        if not isinstance(coordinates, list):
            raise BadTrackFile("a MultiLineString without a list of lines")
        if times is not None and (not isinstance(times, list) or len(times) != len(coordinates)
                                  or not all(isinstance(t, list) for t in times)):
            counts = [len(line) if isinstance(line, list) else 0 for line in coordinates]
            if isinstance(times, list) and len(times) == sum(counts):  # one flat list for all lines
                bounds = [sum(counts[:i]) for i in range(len(counts) + 1)]
                times = [times[a:b] for a, b in zip(bounds, bounds[1:])]
            else:
                raise BadTrackFile("coordTimes must hold one list of times per line")
        lines = [line for line in (_line(line, None if times is None else times[i])
                                   for i, line in enumerate(coordinates)) if line]
        for line in lines[1:]:
            line[0].track_break = True
        return [point for line in lines for point in line]
    return []  # polygons and the rest carry no track


def _line(coordinates: Any, times: Any) -> list[Point]:
    if not isinstance(coordinates, list):
        raise BadTrackFile("a line without a list of coordinates")
    if times is not None and (not isinstance(times, list) or len(times) != len(coordinates)):
        count = len(times) if isinstance(times, list) else "no list of"
        raise BadTrackFile(f"{count} times for {len(coordinates)} coordinates")
    points = []
    for i, coordinate in enumerate(coordinates):
        point = _coordinate(coordinate, f"coordinate {i + 1}")
        if times is not None and times[i] is not None:
            point.time = _time(times[i])
        points.append(point)
    return points


def _coordinate(value: Any, what: str) -> Point:
    if not isinstance(value, list) or len(value) < 2:
        raise BadTrackFile(f"{what} is not [lon, lat]")
    point = Point(None, _json_number(value[1], "lat"), _json_number(value[0], "lon"))
    if len(value) > 2 and value[2] is not None:
        point.altitude = _json_number(value[2], "altitude")
    _check_coordinates(point)
    return point


# --- OwnTracks Recorder ----------------------------------------------------------------------------
def read_rec(data: bytes) -> list[Point]:
    """``_type: location`` objects of an OwnTracks Recorder file; other lines are skipped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadTrackFile("not UTF-8 text") from None
    points = []
    for index, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise BadTrackFile(f"line {index} is not <time> TAB <tag> TAB <JSON>")
        try:
            body = orjson.loads(parts[2])
        except orjson.JSONDecodeError as exc:
            raise BadTrackFile(f"line {index}: not valid JSON ({exc})") from None
        if not isinstance(body, dict) or body.get("_type") != "location":
            continue
        try:
            points.append(_location(body))
        except (BadTrackFile, InvalidPosition) as exc:
            raise BadTrackFile(f"line {index}: {getattr(exc, 'message', exc)}") from None
    return points


def _location(body: dict) -> Point:
    lat, lon = number(body.get("lat"), "lat"), number(body.get("lon"), "lon")
    if lat is None or lon is None:
        raise BadTrackFile("a location without lat and lon")
    velocity = known(number(body.get("vel"), "vel"))
    point = Point(None if body.get("tst") in (None, "") else _time(body["tst"]), lat, lon,
                  speed=None if velocity is None else velocity / 3.6,
                  heading=known(number(body.get("cog"), "cog")),
                  altitude=number(body.get("alt"), "alt"),
                  accuracy=known(number(body.get("acc"), "acc")),
                  battery=known(number(body.get("batt"), "batt")))
    _check_coordinates(point)
    return point


# --- shared ----------------------------------------------------------------------------------
@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Reading a file makes hundreds of thousands of objects and no reference cycles: the
    cycle collector would only walk them again and again (a third of the time of a large
    GPX file)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_REC_LINE = re.compile(rb"\d{4}-\d\d-\d\dT[^\t\n]*\t[^\t\n]*\t\s*\{")
_BY_SUFFIX: dict[str, Callable[[bytes], list[Point]]] = {
    ".gpx": read_gpx, ".geojson": read_geojson, ".json": read_geojson, ".rec": read_rec}


def _reader(path: Path, data: bytes) -> Callable[[bytes], list[Point]]:
    reader = _BY_SUFFIX.get(path.suffix.lower())
    if reader is not None:
        return reader
    head = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<"):
        return read_gpx
    if head.startswith(b"{"):
        return read_geojson
    if _REC_LINE.match(head):
        return read_rec
    raise BadTrackFile("unknown format: expected GPX (.gpx), GeoJSON (.geojson, .json) "
                       "or an OwnTracks Recorder file (.rec)")


def _time(value: Any) -> datetime:
    """ISO 8601 text (no zone: UTC) or epoch seconds or milliseconds, as an aware UTC datetime."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                return moment.replace(tzinfo=timezone.utc)
            return moment if moment.tzinfo is timezone.utc else moment.astimezone(timezone.utc)
    try:
        return parse_time(value, max_future=None)  # numbers, and the reason for what is not a time
    except InvalidPosition as exc:
        raise BadTrackFile(exc.message) from None
    except (OverflowError, ValueError):
        raise BadTrackFile(f"time {str(value)[:40]!r} is outside the calendar") from None


def _float(text: str | None, name: str) -> float:
    if text is None:
        raise BadTrackFile(f"no {name}")
    try:
        return float(text)
    except ValueError:
        raise BadTrackFile(f"{name} {text.strip()[:40]!r} is not a number") from None


def _json_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadTrackFile(f"{name} {str(value)[:40]!r} is not a number")
    return float(value)


def _check_coordinates(point: Point) -> None:
    if not -90.0 <= point.lat <= 90.0:
        raise BadTrackFile(f"lat {point.lat} is outside [-90, 90]")
    if not -180.0 <= point.lon <= 180.0:
        raise BadTrackFile(f"lon {point.lon} is outside [-180, 180]")
