"""A marker's track as JSON, GeoJSON, GPX 1.1 or CSV. Points are dicts keyed by ``TRACK_FIELDS``."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Sequence
from xml.sax.saxutils import escape, quoteattr

import orjson

from tracker.db import TRACK_FIELDS
from tracker.position import format_time

CONTENT_TYPES = {
    "json": "application/json",
    "geojson": "application/geo+json",
    "gpx": "application/gpx+xml",
    "csv": "text/csv",
}
_ORJSON = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def as_json(marker_id: str, start: datetime, end: datetime, points: Sequence[dict]) -> bytes:
    return orjson.dumps(
        {"marker_id": marker_id, "from": start, "to": end, "count": len(points), "positions": points},
        option=_ORJSON,
    )


def as_geojson(marker_id: str, start: datetime, end: datetime, points: Sequence[dict]) -> bytes:
    """A LineString of the whole track, then one Point feature per fix."""
    coordinates = [[point["lon"], point["lat"]] for point in points]
    track = {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coordinates},
        "properties": {"kind": "track", "marker_id": marker_id, "from": start, "to": end, "count": len(points)},
    }
    features = [track]
    features.extend(
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": coordinate},
         "properties": {"kind": "fix", "marker_id": marker_id, "time": point["time"], "speed": point["speed"],
                        "heading": point["heading"], "altitude": point["altitude"], "accuracy": point["accuracy"],
                        "battery": point["battery"], "source": point["source"]}}
        for coordinate, point in zip(coordinates, points)
    )
    return orjson.dumps({"type": "FeatureCollection", "features": features}, option=_ORJSON)


def as_gpx(marker_id: str, start: datetime, end: datetime, points: Sequence[dict]) -> bytes:
    out = io.StringIO()
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write('<gpx version="1.1" creator="gps-tracker" xmlns="http://www.topografix.com/GPX/1/1" '
              'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
              'xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">\n')
    out.write(f"<metadata><name>{escape(marker_id)}</name><time>{format_time(end)}</time></metadata>\n")
    out.write(f"<trk><name>{escape(marker_id)}</name><trkseg>\n")
    for point in sorted(points, key=lambda p: p["time"]):
        out.write(f"<trkpt lat={quoteattr(repr(point['lat']))} lon={quoteattr(repr(point['lon']))}>")
        if point["altitude"] is not None:
            out.write(f"<ele>{point['altitude']!r}</ele>")
        out.write(f"<time>{format_time(point['time'])}</time></trkpt>\n")
    out.write("</trkseg></trk>\n</gpx>\n")
    return out.getvalue().encode()


def as_csv(marker_id: str, start: datetime, end: datetime, points: Sequence[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("marker_id", *TRACK_FIELDS))
    for point in points:
        writer.writerow((marker_id, format_time(point["time"]), *(_cell(point[name]) for name in TRACK_FIELDS[1:])))
    return out.getvalue().encode()


def _cell(value) -> object:
    """Empty for unknown; text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


RENDERERS = {"json": as_json, "geojson": as_geojson, "gpx": as_gpx, "csv": as_csv}
