"""A marker's track as JSON, GeoJSON, GPX 1.1 or CSV. Rows come in ``HISTORY_COLUMNS`` order."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Sequence
from xml.sax.saxutils import escape, quoteattr

import orjson

from tracker.db import HISTORY_COLUMNS
from tracker.position import format_time

CONTENT_TYPES = {
    "json": "application/json",
    "geojson": "application/geo+json",
    "gpx": "application/gpx+xml",
    "csv": "text/csv",
}
_ORJSON = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _points(rows: Sequence[tuple]) -> list[dict]:
    return [dict(zip(HISTORY_COLUMNS, row)) for row in rows]


def as_json(marker_id: str, start: datetime, end: datetime, rows: Sequence[tuple]) -> bytes:
    return orjson.dumps(
        {"marker_id": marker_id, "from": start, "to": end, "count": len(rows), "positions": _points(rows)},
        option=_ORJSON,
    )


def as_geojson(marker_id: str, start: datetime, end: datetime, rows: Sequence[tuple]) -> bytes:
    """A LineString of the whole track, then one Point feature per fix."""
    coordinates = [[row[2], row[1]] for row in rows]
    track = {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": coordinates},
        "properties": {"kind": "track", "marker_id": marker_id, "from": start, "to": end, "count": len(rows)},
    }
    points = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": coordinate},
            "properties": {"kind": "fix", "marker_id": marker_id, **point},
        }
        for coordinate, point in zip(coordinates, _points(rows))
    ]
    for point in points:
        del point["properties"]["lat"], point["properties"]["lon"]
    return orjson.dumps({"type": "FeatureCollection", "features": [track, *points]}, option=_ORJSON)


def as_gpx(marker_id: str, start: datetime, end: datetime, rows: Sequence[tuple]) -> bytes:
    out = io.StringIO()
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write('<gpx version="1.1" creator="gps-tracker" xmlns="http://www.topografix.com/GPX/1/1" '
              'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
              'xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">\n')
    out.write(f"<metadata><name>{escape(marker_id)}</name><time>{format_time(end)}</time></metadata>\n")
    out.write(f"<trk><name>{escape(marker_id)}</name><trkseg>\n")
    for fix_time, lat, lon, _speed, _heading, altitude, _accuracy, _battery, _source in sorted(rows, key=lambda r: r[0]):
        out.write(f"<trkpt lat={quoteattr(repr(lat))} lon={quoteattr(repr(lon))}>")
        if altitude is not None:
            out.write(f"<ele>{altitude!r}</ele>")
        out.write(f"<time>{format_time(fix_time)}</time></trkpt>\n")
    out.write("</trkseg></trk>\n</gpx>\n")
    return out.getvalue().encode()


def as_csv(marker_id: str, start: datetime, end: datetime, rows: Sequence[tuple]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("marker_id", *HISTORY_COLUMNS))
    for row in rows:
        writer.writerow((marker_id, format_time(row[0]), *(_cell(v) for v in row[1:])))
    return out.getvalue().encode()


def _cell(value) -> object:
    """Empty for unknown; text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


RENDERERS = {"json": as_json, "geojson": as_geojson, "gpx": as_gpx, "csv": as_csv}
