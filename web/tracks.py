"""The history view's data: several markers' tracks, and a heatmap of their fixes.

- ``GET /api/tracks?markers=&group=&from=&to=&limit=``: each marker's fixes in the range
  (spikes left out), oldest first, as columns (``tracker.positions.columns.track_columns``):
  ``t`` (ms), ``lat_e6``/``lon_e6`` (millionths of a degree), ``speed`` (m/s), ``altitude``
  (m), null where unknown; at most ``limit`` points a marker (``truncated`` says so).
- ``GET /api/heatmap?markers=&group=&from=&to=&zoom=&bbox=``: the fixes counted per cell of
  a grid made for the map's ``zoom`` (a cell is ``CELL_PIXELS`` pixels there), never the
  points themselves: ``{"cell_deg", "points", "max", "cells": [[lat, lon, count], ...]}``.

Markers are chosen as ``web.marker_selection`` says; the range is 24 hours before ``to``
(now) by default.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tracker.app import app
from tracker.positions import columns
from tracker.positions.model import format_time
from web import params
from web.auth import require
from web.db import request_connection
from web.manage import json_response
from web.marker_selection import selected_markers

DEFAULT_SPAN = timedelta(hours=24)
DEFAULT_POINTS = 100_000
MAX_POINTS = 500_000
CELL_PIXELS = 8
UNAVAILABLE = "history_unavailable"


def time_range(query, span: timedelta = DEFAULT_SPAN) -> tuple[datetime, datetime]:
    end = params.time_param(query, "to", datetime.now(timezone.utc))
    start = params.time_param(query, "from", end - span)
    if start > end:
        raise params.BadParameter("from", "must not be after 'to'")
    return start, end


def cell_degrees(zoom: int) -> float:
    """The side of a heatmap cell, in degrees: ``CELL_PIXELS`` pixels of a 256-pixel tile at ``zoom``."""
    return 360.0 / (256 * 2 ** zoom) * CELL_PIXELS


@app.page("/api/tracks")
async def tracks(web, request):
    access = await require(request)
    markers = await selected_markers(request, access)
    start, end = time_range(request.query)
    limit = params.int_param(request.query, "limit", DEFAULT_POINTS, 1, MAX_POINTS)
    async with request_connection(UNAVAILABLE) as conn:
        found = [{"marker_id": marker, **await columns.track_columns(conn, marker, start, end, limit)}
                 for marker in markers]
    return json_response(web, {"from": format_time(start), "to": format_time(end), "markers": found})


@app.page("/api/heatmap")
async def heatmap(web, request):
    access = await require(request)
    markers = await selected_markers(request, access)
    start, end = time_range(request.query)
    zoom = params.int_param(request.query, "zoom", 10, 0, 20)
    cell = cell_degrees(zoom)
    async with request_connection(UNAVAILABLE) as conn:
        cells = await columns.heat_cells(conn, markers, start, end, cell, params.bbox_param(request.query))
    return json_response(web, {
        "from": format_time(start), "to": format_time(end), "markers": markers, "zoom": zoom, "cell_deg": cell,
        "points": sum(count for _, _, count in cells), "max": max((count for _, _, count in cells), default=0),
        "cells": [[round(lat, 6), round(lon, 6), count] for lat, lon, count in cells]})
