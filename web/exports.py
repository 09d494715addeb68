"""A marker's track as JSON, GeoJSON, GPX 1.1 or CSV, rendered in pieces so that a long
track streams to the client with flat memory. Points are dicts keyed by ``TRACK_FIELDS``.

Each format is a ``Renderer``: ``head()``, then ``points(chunk)`` for each chunk of points
in the order they come, then ``tail(count, next_url)``. ``as_json`` and friends render a
whole list at once, through the same code.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Sequence
from xml.sax.saxutils import escape, quoteattr

import orjson

from tracker.positions.store import TRACK_FIELDS
from tracker.positions.model import format_time

CONTENT_TYPES = {
    "json": "application/json",
    "geojson": "application/geo+json",
    "gpx": "application/gpx+xml",
    "csv": "text/csv",
}
#: Formats whose points must come oldest first whatever the requested order.
CHRONOLOGICAL = frozenset(("gpx",))
_ORJSON = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _json(value) -> bytes:
    return orjson.dumps(value, option=_ORJSON)


class Renderer:
    def __init__(self, marker_id: str, start: datetime, end: datetime) -> None:
        self.marker_id = marker_id
        self.start = start
        self.end = end
        self.first = True

    def head(self) -> bytes:
        return b""

    def points(self, points: Sequence[dict]) -> bytes:
        raise NotImplementedError

    def tail(self, count: int, next_url: str | None) -> bytes:
        return b""

    def _separated(self, items: list[bytes]) -> bytes:
        """Items joined by commas, with a comma before them unless they are the first."""
        if not items:
            return b""
        body = b",".join(items)
        if self.first:
            self.first = False
            return body
        return b"," + body


class JsonRenderer(Renderer):
    def head(self) -> bytes:
        return (b'{"marker_id":' + _json(self.marker_id) + b',"from":' + _json(self.start)
                + b',"to":' + _json(self.end) + b',"positions":[')

    def points(self, points: Sequence[dict]) -> bytes:
        return self._separated([_json(point) for point in points])

    def tail(self, count: int, next_url: str | None) -> bytes:
        return b'],"count":' + _json(count) + b',"next":' + _json(next_url) + b"}"


class GeoJsonRenderer(Renderer):
    """One Point feature per fix, then the whole track as a LineString (its coordinates are
    the only thing kept until the end: about 40 bytes a point)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.coordinates = bytearray()

    def head(self) -> bytes:
        return b'{"type":"FeatureCollection","features":['

    def points(self, points: Sequence[dict]) -> bytes:
        features = []
        for point in points:
            coordinate = _json([point["lon"], point["lat"]])
            if self.coordinates:
                self.coordinates += b","
            self.coordinates += coordinate
            features.append(
                b'{"type":"Feature","geometry":{"type":"Point","coordinates":' + coordinate
                + b'},"properties":' + _json({
                    "kind": "fix", "marker_id": self.marker_id, "time": point["time"], "speed": point["speed"],
                    "heading": point["heading"], "altitude": point["altitude"], "accuracy": point["accuracy"],
                    "battery": point["battery"], "source": point["source"]}) + b"}")
        return self._separated(features)

    def tail(self, count: int, next_url: str | None) -> bytes:
        properties = {"kind": "track", "marker_id": self.marker_id, "from": self.start, "to": self.end,
                      "count": count}
        track = (b'{"type":"Feature","geometry":{"type":"LineString","coordinates":[' + bytes(self.coordinates)
                 + b']},"properties":' + _json(properties) + b"}")
        return self._separated([track]) + b'],"next":' + _json(next_url) + b"}"


class GpxRenderer(Renderer):
    def head(self) -> bytes:
        name = escape(self.marker_id)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<gpx version="1.1" creator="gps-tracker" xmlns="http://www.topografix.com/GPX/1/1" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                'xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">\n'
                f"<metadata><name>{name}</name><time>{format_time(self.end)}</time></metadata>\n"
                f"<trk><name>{name}</name><trkseg>\n").encode()

    def points(self, points: Sequence[dict]) -> bytes:
        out = []
        for point in points:
            out.append(f"<trkpt lat={quoteattr(repr(point['lat']))} lon={quoteattr(repr(point['lon']))}>")
            if point["altitude"] is not None:
                out.append(f"<ele>{point['altitude']!r}</ele>")
            out.append(f"<time>{format_time(point['time'])}</time></trkpt>\n")
        return "".join(out).encode()

    def tail(self, count: int, next_url: str | None) -> bytes:
        return b"</trkseg></trk>\n</gpx>\n"


class CsvRenderer(Renderer):
    def head(self) -> bytes:
        return self._rows([("marker_id", *TRACK_FIELDS)])

    def points(self, points: Sequence[dict]) -> bytes:
        marker = csv_cell(self.marker_id)
        return self._rows([(marker, format_time(point["time"]), *(csv_cell(point[name]) for name in TRACK_FIELDS[1:]))
                           for point in points])

    @staticmethod
    def _rows(rows) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue().encode()


def csv_cell(value) -> object:
    """Empty for unknown; text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


RENDERERS: dict[str, type[Renderer]] = {
    "json": JsonRenderer, "geojson": GeoJsonRenderer, "gpx": GpxRenderer, "csv": CsvRenderer,
}


def render(fmt: str, marker_id: str, start: datetime, end: datetime, points: Sequence[dict],
           next_url: str | None = None) -> bytes:
    """A whole track at once."""
    if fmt in CHRONOLOGICAL:
        points = sorted(points, key=lambda point: point["time"])
    renderer = RENDERERS[fmt](marker_id, start, end)
    return renderer.head() + renderer.points(points) + renderer.tail(len(points), next_url)
